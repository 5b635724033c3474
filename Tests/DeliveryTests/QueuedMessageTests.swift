import Foundation
import Logging
import MailAuth
import MailCore
import MailStore
import NIOCore
import NIOPosix
import PetrelTestSupport
import SMTPClient
import SMTPCore
import Testing

@testable import Delivery

/// A queued message as it goes out: Return-Path dropped, signatures on top, the rest streamed
/// from the file unchanged; and how each result is recorded.
struct QueuedMessageTests {
    static let message =
        "Return-Path: <alice@petrel.test>\r\nReceived: from a by b; Sun, 29 Nov 2026 12:00:00 +0000\r\n"
        + "From: Alice <alice@petrel.test>\r\nTo: bob@remote.test\r\nSubject: hi\r\n\r\n"
        + "line one\r\n.leading dot\r\n\r\n\r\n"

    /// The message queued as Q1 in memory.
    static func withFile<T>(_ text: String, _ body: (String, any QueueStore) async throws -> T) async throws -> T {
        let queue = InMemoryQueue()
        let entry = QueueEntry(
            id: "Q1",
            createdAt: 0,
            sender: "",
            recipients: ["bob@remote.test"],
            smtpUTF8: false,
            body: nil,
            authenticatedUser: nil
        )
        queue.put(entry, message: text)
        return try await body("Q1", queue)
    }

    static func streamed(_ message: QueuedMessage) async throws -> String {
        var bytes: [UInt8] = []
        try await message.stream { bytes += $0.readableBytesView }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func unsignedMessagesLoseOnlyTheirReturnPath() async throws {
        try await Self.withFile(Self.message) { id, queue in
            let message = try await QueuedMessage.open(id, in: queue, timestamp: 0, signers: { _ in [] })
            let text = try await Self.streamed(message)
            #expect(text == String(Self.message.dropFirst("Return-Path: <alice@petrel.test>\r\n".count)))
            #expect(message.size == text.utf8.count)
            #expect(message.header.fields.map(\.name) == ["Received", "From", "To", "Subject"])
        }
    }

    @Test func signedMessagesVerify() async throws {
        let key = try DKIMPrivateKey.generate(.ed25519)
        let signer = DKIMSigner(domain: "petrel.test", selector: "ed", key: key)
        try await Self.withFile(Self.message) { id, queue in
            let message = try await QueuedMessage.open(
                id,
                in: queue,
                timestamp: 1_795_000_000,
                signers: { header in
                    #expect(!header.fields.contains { $0.hasName("Return-Path") })
                    return [signer]
                }
            )
            let text = try await Self.streamed(message)
            #expect(text.hasPrefix("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=petrel.test; s=ed;"))
            // The signature verifies over what is sent (the hash of the body after its empty line).
            let resolver = InMemoryZone()
            resolver.addTXT("ed._domainkey.petrel.test", [key.record])
            var scanner = MessageScanner(now: 1_795_000_000)
            scanner.append(Array(text.utf8))
            let verdicts = await DKIMVerifier(resolver: resolver).verify(scanner.finish())
            #expect(verdicts.map(\.result) == [.pass], "\(verdicts.map(\.reason))")
        }
    }

    @Test func aHeaderOnlyMessageIsSentWhole() async throws {
        let text = "Return-Path: <>\r\nSubject: no body\r\n"
        try await Self.withFile(text) { id, queue in
            let message = try await QueuedMessage.open(id, in: queue, timestamp: 0, signers: { _ in [] })
            #expect(try await Self.streamed(message) == "Subject: no body\r\n")
        }
    }
}

/// Which keys sign a message, decided by a runner that never runs.
struct SigningChoiceTests {
    static func runner(signers: @escaping @Sendable (String) -> [DKIMSigner] = { _ in [] }) -> QueueRunner {
        QueueRunner(
            queue: InMemoryQueue(),
            couriers: .init(local: ScriptedCourier(), remote: ScriptedCourier()),
            settings: DeliverySettings(hostname: "mx.petrel.test", localDomains: ["petrel.test"]),
            signers: signers,
            makeID: { "R1" },
            clock: { 0 },
            logger: Logger(label: "settle-test")
        )
    }

    @Test func theFromDomainChoosesTheSigningKeys() throws {
        let key = try DKIMPrivateKey.generate(.ed25519)
        let runner = Self.runner(signers: { [DKIMSigner(domain: $0, selector: "s", key: key)] })
        func signer(_ header: String) -> String? {
            runner.signers(for: HeaderSection(parsing: Array(header.utf8))).first?.domain
        }
        #expect(signer("From: Alice <alice@petrel.test>\r\n") == "petrel.test")
        #expect(signer("From: MAILER-DAEMON@mx.petrel.test\r\n") == "petrel.test", "a subdomain signs as its domain")
        #expect(signer("From: x@notpetrel.test\r\n") == nil)
        #expect(signer("From: x@remote.test\r\n") == nil, "never for someone else's domain")
        #expect(signer("Subject: no From\r\n") == nil)
        // Only a message that speaks for that one domain alone is signed for it.
        #expect(signer("From: a@petrel.test, b@petrel.test\r\n") == "petrel.test")
        #expect(signer("From: a@petrel.test, ceo@remote.test\r\n") == nil, "another domain rides along")
        #expect(signer("From: a@petrel.test\r\nFrom: b@petrel.test\r\n") == nil, "two From fields")
        #expect(signer("From: Alice <alice@petrel.test\r\n") == nil, "unreadable")
        #expect(runner.isLocal("bob@PETREL.test") && !runner.isLocal("bob@remote.test"))
    }
}
