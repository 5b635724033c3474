import DNSCore
import Foundation
import Logging
import MailStore
import NIOCore
import PetrelConfiguration
import PetrelServer
import PetrelTestSupport
import SMTPCore
import SMTPServer

/// A real Petrel server in this process, on an ephemeral loopback port, with its data in a fresh
/// temporary directory. Stop it with `stop()`; the directory is removed then.
public final class TestServer: Sendable {
    public let server: PetrelServer
    /// The SMTP (port 25 style) listener's port.
    public let port: Int
    /// The submission (STARTTLS) and submissions (implicit TLS) listeners' ports.
    public let submissionPort: Int
    public let submissionsPort: Int
    /// The IMAP (STARTTLS) and IMAPS listeners' ports.
    public let imapPort: Int
    public let imapsPort: Int
    public let dataDirectory: String
    private let running: Task<Void, any Error>

    /// - Parameters:
    ///   - configure: adjusts the configuration (domains, limits, timeouts) before start.
    ///   - resolver: the DNS that SPF, DKIM and DMARC see; by default an empty zone, where
    ///     every name is NXDOMAIN (so every check says "none" at once).
    public static func start(
        domains: [String] = ["localhost"],
        logLevel: Logger.Level = .warning,
        resolver: any DNSResolving = InMemoryZone(),
        configure: @Sendable (inout Configuration) -> Void = { _ in }
    ) async throws -> TestServer {
        let directory = try makeTemporaryDirectory()
        var configuration = Configuration.defaults(hostname: "mx.petrel.test", workingDirectory: directory)
        configuration.domains = domains
        let ephemeral = [ListenAddress(host: "127.0.0.1", port: 0)]
        configuration.listen = Configuration.Listen(
            smtp: ephemeral,
            submission: ephemeral,
            submissions: ephemeral,
            imap: ephemeral,
            imaps: ephemeral
        )
        configuration.timeouts.shutdown = 5
        configure(&configuration)
        var logger = Logger(label: "petrel-test")
        logger.logLevel = logLevel
        let server = try await PetrelServer.start(
            configuration: configuration,
            logger: logger,
            handleSignals: false,
            resolver: resolver
        )
        return TestServer(server: server, dataDirectory: configuration.dataDirectory)
    }

    private init(server: PetrelServer, dataDirectory: String) {
        self.server = server
        self.port = server.addresses(.smtp).first?.port ?? 0
        self.submissionPort = server.addresses(.submission).first?.port ?? 0
        self.submissionsPort = server.addresses(.submissions).first?.port ?? 0
        self.imapPort = server.imapAddresses(.imap).first?.port ?? 0
        self.imapsPort = server.imapAddresses(.imaps).first?.port ?? 0
        self.dataDirectory = dataDirectory
        self.running = Task { try await server.run() }
    }

    public func connect(_ kind: ListenerKind = .smtp) async throws -> SMTPTestClient {
        switch kind {
        case .smtp: return try await SMTPTestClient.connect(port: self.port)
        case .submission: return try await SMTPTestClient.connect(port: self.submissionPort)
        case .submissions: return try await SMTPTestClient.connect(port: self.submissionsPort, implicitTLS: true)
        }
    }

    /// Opens a session and reads the greeting and the EHLO reply.
    public func connectAndGreet(
        _ kind: ListenerKind = .smtp,
        helo: String = "client.example"
    ) async throws
        -> SMTPTestClient
    {
        let client = try await self.connect(kind)
        try await client.expect(220)
        try await client.send("EHLO \(helo)")
        try await client.expect(250)
        return client
    }

    /// The messages in a mailbox's `new/`, as file contents, oldest first by name.
    public func messages(in mailbox: String) -> [String] {
        let directory = DataDirectory(self.dataDirectory).mail + "/" + mailbox + "/new"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return names.compactMap { try? String(contentsOfFile: directory + "/" + $0, encoding: .utf8) }
    }

    /// Every delivered message file in every mailbox.
    public func allMessages() -> [String] {
        let root = DataDirectory(self.dataDirectory).mail
        let mailboxes = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return mailboxes.flatMap { self.messages(in: $0) }
    }

    /// Stops the server and, unless told otherwise, removes its data directory.
    public func stop(removingData: Bool = true) async throws {
        await self.server.shutdown()
        try await self.running.value
        if removingData { self.removeData() }
    }

    public func removeData() {
        try? FileManager.default.removeItem(atPath: (self.dataDirectory as NSString).deletingLastPathComponent)
    }
}
