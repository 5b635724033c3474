import Foundation
import IMAPCore
import Logging
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSupport

@testable import IMAPServer

/// One IMAP connection in memory: `IMAPConnection` over a testing channel, on a fresh Maildir,
/// so tests and `.dialog` files drive the real session (framer, parser, state machine, driver,
/// mailbox store) without a socket. It counts as implicit TLS, so login is allowed.
///
/// The account `alice@example.test` (password `secret`) starts with three messages in INBOX:
/// UIDs 1, 2, 3, the second `\Seen`, arrived on 1 December 2026 at 10:00, 11:00, 12:00 UTC.
final class IMAPHarness: @unchecked Sendable {
    static let user = "alice@example.test"

    let directory: String
    let pool: NIOThreadPool
    let store: MessageStore
    let accounts: MailAccounts
    let channel: NIOAsyncTestingChannel
    let users: IMAPUserSessions
    let logins: FakeLogins
    private var task: Task<Void, Never>?
    private var pending = ByteBuffer()

    static func message(_ number: Int) -> [UInt8] {
        Array(
            ("From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: message \(number)\r\n"
                + "Date: Tue, 1 Dec 2026 1\(number - 1):00:00 +0000\r\nMessage-ID: <\(number)@example.test>\r\n\r\n"
                + "Hello number \(number)\r\n").utf8
        )
    }

    /// The owner of the Maildir: another harness made with `sharing:` is a second connection
    /// to the same accounts, and leaves the directory to it.
    private let owner: Bool

    init(
        appendLimit: UInt64 = 26_214_400,
        limits: IMAPLimits = IMAPLimits(),
        kind: IMAPServerConfiguration.Kind = .imaps,
        tls: TLSContextProvider? = nil,
        sharing other: IMAPHarness? = nil
    ) async throws {
        self.users = other?.users ?? IMAPUserSessions()
        self.logins = other?.logins ?? FakeLogins()
        if let other {
            self.directory = other.directory
            self.pool = other.pool
            self.store = other.store
            self.accounts = other.accounts
            self.owner = false
        } else {
            var template = Array("/tmp/petrel-imap-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
            self.directory = String(cString: made)
            self.pool = NIOThreadPool(numberOfThreads: 2)
            self.pool.start()
            self.store = MessageStore(dataDirectory: self.directory, hostname: "mx.test", threadPool: self.pool)
            _ = try await self.store.prepare()
            self.accounts = MailAccounts(store: self.store)
            self.owner = true
        }
        let account = try await self.accounts.account(Self.user)
        for number in 1...3 where other == nil {
            _ = try account.append(
                "INBOX",
                message: Self.message(number),
                flags: number == 2 ? ["\\Seen"] : [],
                internalDate: 1_796_119_200 + Int64(number - 1) * 3600
            )
        }
        self.channel = NIOAsyncTestingChannel()
        // In the listener's order (IMAPListener): the silence timer, the tagger, the outbound
        // handler (the timer never fires here: the test loop's clock stands still).
        try await self.channel.pipeline.addHandler(IMAPSilenceTimer(limit: IMAPSilenceLimit(seconds: 3_600)))
        try await self.channel.pipeline.addHandler(IMAPInboundTagger())
        try await self.channel.pipeline.addHandler(IMAPOutboundHandler())
        let wrapped = try await self.channel.testingEventLoop.executeInContext {
            try NIOAsyncChannel<IMAPInbound, IMAPOutbound>(wrappingChannelSynchronously: self.channel)
        }
        let connection = IMAPConnection(
            configuration: IMAPServerConfiguration(
                kind: kind,
                limits: limits,
                appendLimit: appendLimit,
                tls: tls,
                sessionsPerUser: 3
            ),
            accounts: self.accounts,
            service: self.logins,
            users: self.users,
            silence: IMAPSilenceLimit(seconds: 60),
            client: IMAPClient(id: "t", remoteAddress: nil),
            logger: Logger(label: "imap-test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        self.task = Task { await connection.run(wrapped) }
    }

    func send(_ bytes: [UInt8]) async throws {
        try await self.channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    func send(_ line: String) async throws {
        try await self.send(Array((line + "\r\n").utf8))
    }

    /// The server's next line (without CRLF), or nil when none comes within the time.
    func line(timeout: Duration = .seconds(10)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let view = self.pending.readableBytesView
            if let cr = view.firstIndex(of: 0x0D), cr + 1 < view.endIndex, view[cr + 1] == 0x0A {
                let line = self.pending.readString(length: cr - view.startIndex)!
                self.pending.moveReaderIndex(forwardBy: 2)
                return line
            }
            guard ContinuousClock.now < deadline else { return nil }
            // Polled: waitForOutboundWrite cannot be cancelled, so a missing line would hang.
            guard let next = try? await self.channel.readOutbound(as: ByteBuffer.self) else {
                try? await Task.sleep(for: .milliseconds(2))
                continue
            }
            var bytes = next
            self.pending.writeBuffer(&bytes)
        }
    }

    /// Lines up to and including the tagged response of `tag`.
    func response(_ tag: String) async -> [String] {
        var lines: [String] = []
        while let line = await self.line() {
            lines.append(line)
            if line.hasPrefix(tag + " ") { break }
        }
        return lines
    }

    /// Sends a command and returns its response lines.
    func command(_ line: String) async throws -> [String] {
        try await self.send(line)
        return await self.response(String(line.prefix { $0 != " " }))
    }

    func login() async throws {
        _ = await self.line()
        _ = try await self.command("L LOGIN \(Self.user) secret")
    }

    func close() async {
        self.task?.cancel()
        try? await self.channel.close()
        await self.task?.value
        guard self.owner else { return }
        await self.accounts.shutdown()
        try? await self.pool.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// Logins without the account store: `alice@example.test` with `secret`, PLAIN only.
final class FakeLogins: IMAPAccountService {
    /// What `settings` answers; a test may change it while sessions run.
    let userSettings = NIOLockedValueBox(IMAPUserSettings())

    func admit(_ client: IMAPClient) async -> String? { nil }

    func settings(user: String) async -> IMAPUserSettings { self.userSettings.withLockedValue { $0 } }

    func beginAuthentication(mechanism: String, client: IMAPClient) -> any IMAPAuthenticationExchange {
        Exchange()
    }

    final class Exchange: IMAPAuthenticationExchange {
        func start(initialResponse: [UInt8]?) async -> IMAPAuthenticationStep {
            guard let initialResponse else { return .challenge([]) }
            return await self.receive(initialResponse)
        }

        func receive(_ response: [UInt8]) async -> IMAPAuthenticationStep {
            let parts = response.split(separator: 0, omittingEmptySubsequences: false).map {
                String(decoding: $0, as: UTF8.self)
            }
            if parts.count == 3, parts[1] == IMAPHarness.user, parts[2] == "secret" {
                return .succeeded(user: parts[1])
            }
            return .failed(.authenticationFailed, "invalid credentials", close: false)
        }

        func cancel() async -> IMAPAuthenticationStep { .failed(nil, "authentication cancelled", close: false) }
    }
}
