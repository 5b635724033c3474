import Accounts
import DNSCore
import Foundation
import Logging
import MailCore
import MailIntake
import MailStore
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import PetrelConfiguration
import SMTPCore
import Testing

/// The inbound pipeline without a socket or a Maildir: sessions run by the server's own
/// `SessionDriver` against `MailReceiver`, which stores through an in-memory `MessageStoring`.
@Suite struct IntakeTests {
    /// Messages kept in memory, as committed.
    final class MemoryStore: MessageStoring {
        struct Stored: Sendable {
            var id: String
            var text: String
            var mailboxes: [String]
            var folder: String?
            var queued: QueueEntry?
        }

        let stored = NIOLockedValueBox<[Stored]>([])
        /// Make every commit fail, as a full disk would.
        let failCommits = NIOLockedValueBox(false)

        func beginMessage(id: String, local: Bool, queued: Bool) -> MemoryMessage {
            MemoryMessage(id: id, store: self)
        }

        func usage(of mailbox: String) async throws(StoreError) -> StorageUsage {
            let mine = self.stored.withLockedValue { $0.filter { $0.mailboxes.contains(mailbox) } }
            return StorageUsage(bytes: UInt64(mine.reduce(0) { $0 + $1.text.utf8.count }), messages: mine.count)
        }
    }

    actor MemoryMessage: MessageWriting {
        nonisolated let id: String
        let store: MemoryStore
        var content = ByteBuffer()
        var size = 0

        init(id: String, store: MemoryStore) {
            self.id = id
            self.store = store
        }

        func append(_ content: ByteBuffer) async {
            var content = content
            self.size += content.readableBytes
            self.content.writeBuffer(&content)
        }

        func commit(
            header: String,
            to mailboxes: [String],
            folder: String?,
            queueEntry: QueueEntry?
        ) async throws(StoreError) {
            if self.store.failCommits.withLockedValue({ $0 }) {
                throw StoreError.io(operation: "write", path: self.id, errno: 28)  // ENOSPC
            }
            self.size += header.utf8.count
            let stored = MemoryStore.Stored(
                id: self.id,
                text: header + String(buffer: self.content),
                mailboxes: mailboxes,
                folder: folder,
                queued: queueEntry
            )
            self.store.stored.withLockedValue { $0.append(stored) }
        }

        func discard() async {}
    }

    /// A resolver with nothing to say (the tests do not check SPF, DKIM or DMARC).
    struct NoDNS: DNSResolving {
        func lookup(_ name: DNSName, _ type: DNSRecordType) async -> DNSLookupResult {
            .failure(DNSQuestion(name: name, type: type), .timeout)
        }
    }

    struct Intake {
        let store = MemoryStore()
        let receiver: MailReceiver
        let directory: String
        let checks = PasswordChecks()

        let accounts: AccountStore

        init(quota: Configuration.Quota = Configuration.Quota()) throws {
            self.directory = NSTemporaryDirectory() + "intake-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
            let accounts = try AccountStore(path: self.directory + "/accounts.sqlite")
            self.accounts = accounts
            try accounts.addMailbox(AccountAddress(validating: "alice@example.test"), password: nil)
            var policy = Configuration.InboundPolicy()
            policy.verify = false
            self.receiver = try MailReceiver(
                accounts: accounts,
                resolver: RecipientResolver(domains: ["example.test"]),
                store: self.store,
                hostname: "mx.example.test",
                ids: QueueIDGenerator(),
                queued: { _ in },
                failures: LoginFailures(policy: Configuration.LoginFailurePolicy()),
                checks: self.checks,
                inbound: InboundAuthentication(policy: policy, resolver: NoDNS(), hostname: "mx.example.test"),
                quota: quota,
                metrics: IntakeMetrics(factory: NOOPMetricsHandler.instance),
                logger: Logger(label: "intake-test")
            )
        }

        /// Stops the password threads and removes the account database.
        func close() async {
            await self.checks.shutdown()
            try? FileManager.default.removeItem(atPath: self.directory)
        }

        /// Runs the client's bytes through the framer and the driver, as the connection does;
        /// returns the reply codes.
        func session(_ text: String) async -> [Int] {
            var driver = SessionDriver(
                configuration: .init(hostname: "mx.example.test", limits: SMTPLimits()),
                receiver: self.receiver,
                connection: ConnectionInfo(
                    id: "t",
                    remoteAddress: try? SocketAddress(ipAddress: "192.0.2.7", port: 50_000),
                    localAddress: try? SocketAddress(ipAddress: "192.0.2.1", port: 25)
                )
            )
            var framer = SMTPInboundFramer(limits: SMTPLimits())
            var codes: [Int] = []
            if let greeting = await driver.greet() { codes.append(greeting.reply.code) }
            framer.append(ByteBuffer(string: text))
            while let event = framer.next() {
                guard let reply = await driver.handle(event) else { continue }
                codes.append(reply.reply.code)
                framer.replySent(then: reply.continuation)
            }
            await driver.finish()
            return codes
        }
    }

    static let message =
        "EHLO client.example\r\nMAIL FROM:<joe@client.example>\r\nRCPT TO:<alice@example.test>\r\n"
        + "RCPT TO:<nobody@example.test>\r\nDATA\r\nFrom: <joe@client.example>\r\nSubject: hi\r\n\r\nhello\r\n.\r\n"
        + "QUIT\r\n"

    /// A full mailbox: 452 4.2.2 at RCPT TO, so the sender keeps the message; a SIZE= that would
    /// not fit is refused the same way; once there is room, the same message is taken.
    @Test func aFullMailboxIsRefusedForNowAndTakesMailOnceThereIsRoom() async throws {
        let intake = try Intake(quota: Configuration.Quota(storage: 1_000_000))
        let alice = try AccountAddress(validating: "alice@example.test")
        let send =
            "EHLO client.example\r\nMAIL FROM:<joe@client.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
            + "From: <joe@client.example>\r\nSubject: hi\r\n\r\n" + String(repeating: "x", count: 120)
            + "\r\n.\r\nQUIT\r\n"
        let first = await intake.session(send)
        #expect(first == [220, 250, 250, 250, 354, 250, 221], "under the default quota: \(first)")
        // Its own quota: 50 octets more than it holds now.
        let used = try await intake.store.usage(of: "alice@example.test").bytes
        try intake.accounts.setSettings(MailboxSettings(storageQuota: used + 50), for: alice)
        // A message declared at 100 octets does not fit.
        let declared = "EHLO c\r\nMAIL FROM:<joe@client.example> SIZE=100\r\nRCPT TO:<alice@example.test>\r\nQUIT\r\n"
        #expect(await intake.session(declared) == [220, 250, 250, 452, 221])
        // A message without SIZE= still fits (the quota is soft by one message) and fills it.
        #expect(await intake.session(send) == [220, 250, 250, 250, 354, 250, 221])
        let refused = await intake.session(send)
        #expect(
            refused.prefix(4) == [220, 250, 250, 452] && !refused.contains(354),
            "full: refused for now, never taken: \(refused)"
        )
        #expect(intake.store.stored.withLockedValue { $0.count } == 2)
        // The reply says it is temporary, and why (RFC 3463 X.2.2).
        let reply = SMTPReply.mailboxFull("<alice@example.test>")
        #expect(reply.code == 452 && reply.enhancedCode == EnhancedStatusCode(4, 2, 2))
        // Room made (mail deleted), or the quota raised: the sender's next try is taken.
        intake.store.stored.withLockedValue { $0.removeAll() }
        #expect(await intake.session(send) == [220, 250, 250, 250, 354, 250, 221])
        try intake.accounts.setSettings(MailboxSettings(storageQuota: 0), for: alice)
        for _ in 0..<3 { #expect(await intake.session(send).contains(452) == false, "no limit at all") }
        await intake.close()
    }

    @Test func aMessageReachesItsMailboxThroughTheStore() async throws {
        let intake = try Intake()
        #expect(await intake.session(Self.message) == [220, 250, 250, 250, 550, 354, 250, 221])
        let stored = intake.store.stored.withLockedValue { $0 }
        #expect(stored.count == 1)
        #expect(stored.first?.mailboxes == ["alice@example.test"])
        #expect(stored.first?.folder == nil && stored.first?.queued == nil)
        let text = stored.first?.text ?? ""
        #expect(text.hasPrefix("Return-Path: <joe@client.example>\r\n"), "\(text)")
        #expect(text.contains("Received: from client.example ([192.0.2.7])"), "\(text)")
        #expect(text.hasSuffix("\r\n\r\nhello\r\n"), "\(text)")
        await intake.close()
    }

    @Test func aFailedCommitIsATemporaryFailureAndNothingIsKept() async throws {
        let intake = try Intake()
        intake.store.failCommits.withLockedValue { $0 = true }
        let codes = await intake.session(Self.message)
        // The reply to the end of data (the seventh), without trapping when fewer came.
        #expect(codes.count == 8 && codes[6] / 100 == 4, "\(codes)")
        #expect(intake.store.stored.withLockedValue { $0 }.isEmpty)
        await intake.close()
    }

    @Test func unknownRecipientsOpenNoMessage() async throws {
        let intake = try Intake()
        let codes = await intake.session(
            "EHLO c.example\r\nMAIL FROM:<joe@client.example>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\nQUIT\r\n"
        )
        #expect(codes == [220, 250, 250, 550, 554, 221])
        #expect(intake.store.stored.withLockedValue { $0 }.isEmpty)
        await intake.close()
    }
}
