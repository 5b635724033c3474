import Accounts
import DNSCore
import Foundation
import MailAuth
import MailCore
import MailStore
import PetrelServer
import PetrelTestSupport
import Testing

/// Outbound delivery end to end: a message submitted to Petrel leaves through the queue runner
/// to a receiver listening on port 25 of another loopback address, found by MX lookup.
/// Each test has its own 127.0.0.N so that tests can run side by side.
@Suite struct OutboundDeliveryTests {
    static let password = "correct horse battery staple"

    /// A server for petrel.test with alice (password) and a DKIM key, and a zone where
    /// `domain` has its MX at `mx.<domain>` → `address`.
    static func server(
        mx address: String,
        domain: String = "remote.test",
        zone: InMemoryZone = InMemoryZone(),
        configure: @Sendable @escaping (inout Configuration) -> Void = { _ in }
    ) async throws -> TestServer {
        zone.add(domain, .mx(preference: 10, exchange: DNSName("mx." + domain)!), type: .mx)
        zone.add("mx." + domain, .a(IPAddress(address)!.octets), type: .a)
        let server = try await TestServer.start(domains: ["petrel.test"], logLevel: .info, resolver: zone) {
            configuration in
            configuration.delivery.retryFirst = 1
            configuration.delivery.retryMaximum = 1
            configuration.delivery.replyTimeout = 3
            configure(&configuration)
        }
        try server.server.accounts.addMailbox(
            AccountAddress(validating: "alice@petrel.test"),
            password: PasswordCredentials.make(password: Self.password)
        )
        let key = try DKIMPrivateKey.generate(.rsa)
        try DKIMKeyStore(dataDirectory: server.dataDirectory).add(key, domain: "petrel.test", selector: "s1")
        zone.addTXT("s1._domainkey.petrel.test", [key.record])
        return server
    }

    /// Submits a message as alice on the submission port (STARTTLS, AUTH PLAIN).
    static func submit(
        _ server: TestServer,
        to recipients: [String],
        body: String = "Hello from Petrel.\r\n.dot-stuffed line\r\n"
    ) async throws {
        let client = try await server.connectAndGreet(.submission)
        try await client.send("STARTTLS")
        try await client.expect(220)
        #expect(await client.startTLS())
        try await client.send("EHLO client.example")
        try await client.expect(250)
        try await client.send("AUTH PLAIN " + Base64.encode(Array("\0alice@petrel.test\0\(Self.password)".utf8)))
        try await client.expect(235)
        try await client.send("MAIL FROM:<alice@petrel.test>")
        try await client.expect(250)
        for recipient in recipients {
            try await client.send("RCPT TO:<\(recipient)>")
            try await client.expect(250)
        }
        try await client.send("DATA")
        try await client.expect(354)
        let header = [
            "From: Alice <alice@petrel.test>", "To: \(recipients.joined(separator: ", "))", "Subject: outbound test",
            "Date: Sun, 29 Nov 2026 12:00:00 +0000", "Message-ID: <\(UUID().uuidString)@petrel.test>",
        ]
        let stuffed = body.replacingOccurrences(of: "\r\n.", with: "\r\n..")
        try await client.sendRaw(Array((header.joined(separator: "\r\n") + "\r\n\r\n" + stuffed + ".\r\n").utf8))
        try await client.expect(250)
        try await client.send("QUIT")
    }

    static func waitForEmptyQueue(_ server: TestServer, timeout: Duration = .seconds(20)) async throws -> [QueueEntry] {
        let deadline = ContinuousClock.now + timeout
        var entries = try server.server.queue.entries()
        while !entries.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            entries = try server.server.queue.entries()
        }
        return entries
    }

    @Test func submittedMailIsSignedAndDelivered() async throws {
        let zone = InMemoryZone()
        let server = try await Self.server(mx: "127.0.0.2", zone: zone)
        let receiver = try await ScriptedReceiver.start(host: "127.0.0.2")
        try await Self.submit(server, to: ["bob@remote.test"])
        let messages = await receiver.waitForMessages(1)
        try #require(messages.count == 1)
        let message = messages[0]
        #expect(message.sender == "alice@petrel.test")
        #expect(message.recipients == ["bob@remote.test"])
        #expect(message.text.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=petrel.test; s=s1;"))
        #expect(!message.text.contains("Return-Path:"), "Return-Path is for the final delivery to add")
        #expect(message.text.contains("\r\n.dot-stuffed line\r\n"), "dot-stuffing undone exactly once")
        // The signature verifies against the published key.
        var scanner = MessageScanner(now: Int(Date().timeIntervalSince1970))
        scanner.append(message.data)
        let verdicts = await DKIMVerifier(resolver: zone).verify(scanner.finish())
        #expect(verdicts.map(\.result) == [.pass], "\(verdicts.map(\.reason))")
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        await receiver.stop()
        try await server.stop()
    }

    @Test func temporaryFailuresAreRetried() async throws {
        let server = try await Self.server(mx: "127.0.0.3")
        var script = ScriptedReceiver.Script()
        script.endOfData = { connection in connection < 2 ? "451 4.3.0 try again later" : "250 2.0.0 queued" }
        let receiver = try await ScriptedReceiver.start(host: "127.0.0.3", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        let messages = await receiver.waitForMessages(1, timeout: .seconds(30))
        #expect(messages.count == 1)
        #expect(receiver.connections == 3, "451 twice, then 250")
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        await receiver.stop()
        try await server.stop()
    }

    @Test func aRefusedRecipientIsBouncedAndTheOtherDelivered() async throws {
        let server = try await Self.server(mx: "127.0.0.4")
        var script = ScriptedReceiver.Script()
        script.recipient = { address, _ in
            address.hasPrefix("nobody@") ? "550 5.1.1 <\(address)>: no such user" : "250 2.1.5 OK"
        }
        let receiver = try await ScriptedReceiver.start(host: "127.0.0.4", script: script)
        try await Self.submit(server, to: ["bob@remote.test", "nobody@remote.test"])
        let messages = await receiver.waitForMessages(1)
        #expect(messages.map(\.recipients) == [["bob@remote.test"]])
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        // One report, to alice, naming the refused recipient and what the server said.
        let reports = server.messages(in: "alice@petrel.test")
        try #require(reports.count == 1)
        let report = reports[0]
        #expect(report.contains("Return-Path: <>"))
        #expect(report.contains("From: Mail Delivery System <MAILER-DAEMON@mx.petrel.test>"))
        #expect(report.contains("Final-Recipient: rfc822; nobody@remote.test"))
        #expect(report.contains("Status: 5.1.1"))
        #expect(report.contains("Remote-MTA: dns; mx.remote.test"))
        #expect(report.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody@remote.test>: no such user"))
        #expect(!report.contains("Final-Recipient: rfc822; bob@remote.test"))
        #expect(report.contains("Subject: outbound test"), "the original header is returned")
        #expect(report.contains("DKIM-Signature:") == false, "a local copy is not signed")
        await receiver.stop()
        try await server.stop()
    }

    @Test func aNullMXBouncesAtOnce() async throws {
        let zone = InMemoryZone()
        zone.add("nomail.test", .mx(preference: 0, exchange: .root), type: .mx)
        let server = try await Self.server(mx: "127.0.0.5", zone: zone)
        try await Self.submit(server, to: ["bob@nomail.test"])
        #expect(try await Self.waitForEmptyQueue(server, timeout: .seconds(10)).isEmpty)
        let reports = server.messages(in: "alice@petrel.test")
        try #require(reports.count == 1)
        #expect(reports[0].contains("Status: 5.1.10"))
        #expect(reports[0].contains("null MX"))
        try await server.stop()
    }

    @Test func aDroppedConnectionIsRetried() async throws {
        let server = try await Self.server(mx: "127.0.0.6")
        var script = ScriptedReceiver.Script()
        script.endOfData = { connection in connection == 0 ? nil : "250 2.0.0 queued" }
        let receiver = try await ScriptedReceiver.start(host: "127.0.0.6", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        let messages = await receiver.waitForMessages(1, timeout: .seconds(30))
        #expect(messages.count == 1)
        #expect(receiver.connections == 2)
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        await receiver.stop()
        try await server.stop()
    }

    @Test func aSlowServerTimesOutAndIsRetried() async throws {
        let server = try await Self.server(mx: "127.0.0.7")
        var script = ScriptedReceiver.Script()
        script.dataDelay = .seconds(5)  // past the 3 s reply limit of the test configuration
        let receiver = try await ScriptedReceiver.start(host: "127.0.0.7", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        try await Task.sleep(for: .seconds(5))
        let entries = try server.server.queue.entries()
        try #require(entries.count == 1)
        let recipient = entries[0].recipients[0]
        #expect(recipient.state == .pending)
        #expect(recipient.attempts >= 1)
        #expect(recipient.lastError?.contains("timed out") == true, "\(recipient.lastError ?? "")")
        await receiver.stop()
        try await server.stop()
    }
}
