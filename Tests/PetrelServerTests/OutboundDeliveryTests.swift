import Accounts
import DNSCore
import Foundation
import MailAuth
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import PetrelConfiguration
import PetrelOperator
import PetrelServer
import PetrelTestSupport
import SMTPServer
import ServerTestSupport
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
            configuration.delivery.replyTimeout = 3 * Slowdown.factor  // a TLS handshake may take seconds under TSan
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
            "From: Alice <alice@petrel.test>", "To: \(recipients.joined(separator: ",\r\n\t"))",
            "Subject: outbound test",
            "Date: Sun, 29 Nov 2026 12:00:00 +0000", "Message-ID: <\(UUID().uuidString)@petrel.test>",
        ]
        let stuffed = body.replacingOccurrences(of: "\r\n.", with: "\r\n..")
        try await client.sendRaw(Array((header.joined(separator: "\r\n") + "\r\n\r\n" + stuffed + ".\r\n").utf8))
        try await client.expect(250)
        try await client.send("QUIT")
    }

    static func waitForEmptyQueue(_ server: TestServer, timeout: Duration = .seconds(20)) async throws -> [QueueEntry] {
        _ = await eventually(within: timeout) { (try? server.server.queue.entries().isEmpty) == true }
        return try server.server.queue.entries()
    }

    @Test func submittedMailIsSignedAndDelivered() async throws {
        let zone = InMemoryZone()
        let server = try await Self.server(mx: "127.0.0.2", zone: zone)
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.2")
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

    /// Outbound smuggling: a submitted message whose lines look like the end of data and a second
    /// transaction reaches the next server as one message, dot-stuffed again, in one transaction.
    /// (Bare CR or LF line ends never get that far: they are refused at receipt, `554 5.6.0`.)
    @Test func endOfDataLookAlikesAreRelayedInsideTheMessage() async throws {
        let server = try await Self.server(mx: "127.0.0.23")
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.23")
        let smuggled = "MAIL FROM:<mallory@petrel.test>\r\nRCPT TO:<victim@remote.test>\r\nDATA\r\nsmuggled\r\n"
        try await Self.submit(server, to: ["bob@remote.test"], body: "before\r\n.\r\n\(smuggled).\r\nafter\r\n")
        let messages = await receiver.waitForMessages(1)
        try #require(messages.count == 1)
        #expect(messages[0].text.hasSuffix("\r\n\r\nbefore\r\n.\r\n\(smuggled).\r\nafter\r\n"))
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await receiver.waitForMessages(2, timeout: .milliseconds(100)).count == 1, "one message, no second")
        await receiver.stop()
        try await server.stop()
    }

    @Test func temporaryFailuresAreRetried() async throws {
        let server = try await Self.server(mx: "127.0.0.3")
        var script = ScriptedMXServer.Script()
        script.endOfData = { connection in connection < 2 ? "451 4.3.0 try again later" : "250 2.0.0 queued" }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.3", script: script)
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
        var script = ScriptedMXServer.Script()
        script.recipient = { address, _ in
            address.hasPrefix("nobody@") ? "550 5.1.1 <\(address)>: no such user" : "250 2.1.5 OK"
        }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.4", script: script)
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

    /// A remote server's refusal quoted in a report: long, without spaces, in multi-octet UTF-8.
    /// Before, it was cut at 700 characters (not octets) and folded only at spaces, so a line of
    /// the report could pass RFC 5322's 998 octets.
    @Test func aLongRemoteReplyKeepsEveryReportLineUnder998Octets() async throws {
        let server = try await Self.server(mx: "127.0.0.17")
        var script = ScriptedMXServer.Script()
        let long = String(repeating: "é", count: 1800)  // 3,600 octets in one word
        script.recipient = { _, _ in "550 5.1.1 \(long)" }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.17", script: script)
        try await Self.submit(server, to: ["nobody@remote.test"])
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        let report = try #require(server.messages(in: "alice@petrel.test").first)
        #expect(report.contains("Diagnostic-Code: smtp; 550 5.1.1\n\téé"), "folded before the long word")
        let longest = report.split(separator: "\n").map(\.utf8.count).max() ?? 0
        #expect(longest <= 998, "a report line of \(longest) octets")
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
        var script = ScriptedMXServer.Script()
        script.endOfData = { connection in connection == 0 ? nil : "250 2.0.0 queued" }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.6", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        let messages = await receiver.waitForMessages(1, timeout: .seconds(30))
        #expect(messages.count == 1)
        #expect(receiver.connections == 2)
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        await receiver.stop()
        try await server.stop()
    }

    /// A delivery still waiting for its reply at `timeouts.shutdown` is cut off: the stop is a
    /// clean one all the same, and the message stays queued for the next start.
    @Test func aDeliveryOutlastingTheShutdownLimitStaysQueued() async throws {
        let server = try await Self.server(mx: "127.0.0.24") { configuration in
            configuration.delivery.replyTimeout = 600
            configuration.timeouts.shutdown = 1
        }
        var script = ScriptedMXServer.Script()
        script.dataDelay = { _ in .seconds(3600) }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.24", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        #expect(await eventually { receiver.dataEnds >= 1 })
        try await server.stop(removingData: false)
        let entries = try server.server.queue.entries()
        #expect(entries.count == 1 && entries.first?.recipients.first?.state == .pending, "\(entries)")
        #expect(receiver.messages.isEmpty)
        server.removeData()
        await receiver.stop()
    }

    @Test func aSlowServerTimesOutAndIsRetried() async throws {
        let server = try await Self.server(mx: "127.0.0.7")
        var script = ScriptedMXServer.Script()
        script.dataDelay = { _ in .seconds(5).stretched }  // past the reply limit of the test configuration
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.7", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        #expect(await eventually { (try? server.server.queue.entries().first?.recipients[0].attempts ?? 0) ?? 0 >= 1 })
        let entries = try server.server.queue.entries()
        try #require(entries.count == 1)
        let recipient = entries[0].recipients[0]
        #expect(recipient.state == .pending)
        #expect(recipient.attempts >= 1)
        #expect(recipient.lastError?.contains("timed out") == true, "\(recipient.lastError ?? "")")
        await receiver.stop()
        try await server.stop()
    }

    @Test func aServerThatTalksAfterItsSTARTTLSReplyIsCutOff() async throws {
        let server = try await Self.server(mx: "127.0.0.12") { configuration in
            configuration.delivery.retryFirst = 600
            configuration.delivery.retryMaximum = 600
        }
        var script = ScriptedMXServer.Script()
        // An attacker's reply slipped in after the 220: it would be read as the answer to EHLO.
        script.startTLSReply = "220 2.0.0 Ready\r\n250 2.0.0 injected"
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.12", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        #expect(await eventually { (try? server.server.queue.entries().first?.recipients[0].lastError) != nil })
        let entries = try server.server.queue.entries()
        try #require(entries.count == 1)
        let recipient = entries[0].recipients[0]
        #expect(recipient.state == .pending)
        #expect(recipient.lastError?.contains("sent data after its reply to STARTTLS") == true, "\(recipient)")
        #expect(receiver.connections == 1, "no second try in plaintext with a man in the middle")
        #expect(receiver.messages.isEmpty)
        await receiver.stop()
        try await server.stop()
    }

    /// Petrel to Petrel: STARTTLS with an unverifiable (self-signed) certificate is used, and the
    /// receiving side verifies our DKIM signature through the same zone.
    @Test func deliveryToAnotherPetrelOverSTARTTLS() async throws {
        let zone = InMemoryZone()
        let server = try await Self.server(mx: "127.0.0.13", zone: zone)
        let remote = try await TestServer.start(domains: ["remote.test"], resolver: zone) { configuration in
            configuration.hostname = "mx.remote.test"
            configuration.listen.smtp = [ListenAddress(host: "127.0.0.13", port: 25)]
        }
        try remote.server.accounts.addMailbox(AccountAddress(validating: "bob@remote.test"), password: nil)
        try await Self.submit(server, to: ["bob@remote.test"])
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        let delivered = remote.messages(in: "bob@remote.test")
        try #require(delivered.count == 1)
        let message = delivered[0]
        #expect(message.contains("by mx.remote.test (Petrel) with ESMTPS"), "STARTTLS was used")
        #expect(message.contains("(using TLSv1.3"))
        #expect(message.contains("\tdkim=pass (signature verified with a 2048-bit RSA key) header.d=petrel.test"))
        #expect(message.contains("Return-Path: <alice@petrel.test>"), "added by the final delivery, once")
        #expect(message.components(separatedBy: "Return-Path:").count == 2)
        try await remote.stop()
        try await server.stop()
    }

    /// A smarthost (`[relay]`): TLS required and verified (against `ca_file`), AUTH PLAIN, no MX
    /// lookup: everything remote goes there.
    @Test func mailGoesThroughTheConfiguredRelay() async throws {
        let zone = InMemoryZone()
        zone.add("relay.test", .a(IPAddress("127.0.0.14")!.octets), type: .a)
        let relay = try await TestServer.start(domains: ["relay.test", "petrel.test"], resolver: zone) {
            configuration in
            configuration.hostname = "relay.test"
            configuration.listen.submission = [ListenAddress(host: "127.0.0.14", port: 587)]
        }
        try relay.server.accounts.addMailbox(
            AccountAddress(validating: "alice@petrel.test"),
            password: PasswordCredentials.make(password: "relay secret")
        )
        try relay.server.accounts.addMailbox(AccountAddress(validating: "bob@relay.test"), password: nil)
        let certificate = relay.dataDirectory + "/tls/self-signed-certificate.pem"
        // No MX for relay.test at all: the relay is found by its address, not by MX.
        let server = try await Self.server(mx: "127.0.0.15", domain: "unused.test", zone: zone) { configuration in
            configuration.relay = Configuration.Relay(
                host: "relay.test",
                port: 587,
                username: "alice@petrel.test",
                password: "relay secret",
                caFile: certificate
            )
        }
        try await Self.submit(server, to: ["bob@relay.test"])
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        let delivered = relay.messages(in: "bob@relay.test")
        try #require(delivered.count == 1)
        #expect(delivered[0].contains("with ESMTPSA"), "TLS and AUTH")
        #expect(delivered[0].contains("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=petrel.test"))
        try await server.stop()

        // Without the relay's certificate among the trusted ones, nothing is sent.
        let untrusting = try await Self.server(mx: "127.0.0.15", domain: "unused.test", zone: zone) { configuration in
            configuration.relay = Configuration.Relay(
                host: "relay.test",
                port: 587,
                username: "alice@petrel.test",
                password: "relay secret"
            )
        }
        try await Self.submit(untrusting, to: ["bob@relay.test"])
        #expect(await eventually { (try? untrusting.server.queue.entries().first?.recipients[0].lastError) != nil })
        let entries = try untrusting.server.queue.entries()
        try #require(entries.count == 1)
        #expect(entries[0].recipients[0].state == .pending)
        #expect(entries[0].recipients[0].lastError?.contains("certificate not trusted") == true, "\(entries[0])")
        #expect(relay.messages(in: "bob@relay.test").count == 1)
        try await untrusting.stop()
        try await relay.stop()
    }

    /// A relay that speaks only TLS 1.0 and 1.1 gets nothing: TLS to the relay (required and
    /// verified) needs 1.2 or later (RFC 8996). The same relay offering 1.2 completes its handshake.
    @Test func theRelayMustSpeakTLS12OrLater() async throws {
        for (maximum, handshakes) in [(TLSVersion.tlsv11, 0), (.tlsv12, 1)] {
            let relay = try await TLSOnlyServer.start(host: "127.0.0.18", maximumVersion: maximum)
            let zone = InMemoryZone()
            zone.add("relay.test", .a(IPAddress("127.0.0.18")!.octets), type: .a)
            let server = try await Self.server(mx: "127.0.0.19", domain: "unused.test", zone: zone) { configuration in
                // Port 465: TLS from the first octet.
                configuration.relay = Configuration.Relay(host: "relay.test", port: 465, caFile: relay.certificateFile)
            }
            try await Self.submit(server, to: ["bob@relay.test"])
            #expect(await eventually { (try? server.server.queue.entries().first?.recipients[0].lastError) != nil })
            let error = try server.server.queue.entries().first?.recipients[0].lastError ?? ""
            #expect(relay.handshakes == handshakes, "TLS up to \(maximum): \(error)")
            if handshakes == 0 { #expect(error.contains("TLS"), "\(error)") }
            try await server.stop()
            await relay.stop()
        }
    }

    /// Queues a message the way `petrel sendmail` does (through pickup/).
    static func drop(
        _ server: TestServer,
        sender: String,
        to recipients: [String],
        message: String
    ) async throws -> String {
        let id = "T\(UInt64.random(in: 0..<UInt64.max))"
        let entry = QueueEntry(
            id: id,
            createdAt: Int64(Date().timeIntervalSince1970),
            sender: sender.isEmpty ? .null : .mailbox(Mailbox(sender)!),
            recipients: recipients.map { Mailbox($0)! },
            smtpUTF8: false,
            body: "7BIT",
            authenticatedUser: nil
        )
        let pickup = server.dataDirectory + "/pickup"
        try OutboundQueue.drop(message: Array(message.utf8), entry: entry, into: pickup)
        // Wait for the server to take it (it looks every second).
        let deadline = ContinuousClock.now + .seconds(10)
        while FileManager.default.fileExists(atPath: pickup + "/\(id).envelope"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        return id
    }

    @Test func aMessageThatPassedTooManyHostsIsBouncedAsALoop() async throws {
        let server = try await Self.server(mx: "127.0.0.16")
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.16")
        let received = (1...51).map {
            "Received: from hop\($0).example by hop\($0 + 1).example; Sun, 29 Nov 2026 12:00:00 +0000\r\n"
        }
        _ = try await Self.drop(
            server,
            sender: "alice@petrel.test",
            to: ["bob@remote.test"],
            message: "Return-Path: <alice@petrel.test>\r\n" + received.joined()
                + "From: alice@petrel.test\r\nSubject: loop\r\n\r\nround and round\r\n"
        )
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        let reports = server.messages(in: "alice@petrel.test")
        try #require(reports.count == 1)
        #expect(reports[0].contains("Status: 5.4.6"))
        #expect(reports[0].contains("mail loop"))
        #expect(receiver.connections == 0)
        await receiver.stop()
        try await server.stop()
    }

    @Test func aFailedReportIsNeverReported() async throws {
        let zone = InMemoryZone()
        zone.add("nomail.test", .mx(preference: 0, exchange: .root), type: .mx)
        let server = try await Self.server(mx: "127.0.0.17", zone: zone)
        _ = try await Self.drop(
            server,
            sender: "",
            to: ["someone@nomail.test"],
            message: "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.petrel.test\r\nSubject: a report\r\n\r\nreport\r\n"
        )
        #expect(try await Self.waitForEmptyQueue(server).isEmpty, "given up on, not kept")
        try await Task.sleep(for: .seconds(1))
        #expect(try server.server.queue.entries().isEmpty, "no report about a report")
        #expect(server.allMessages().isEmpty)
        try await server.stop()
    }

    @Test func theSenderHearsOnceThatDeliveryIsDelayed() async throws {
        let server = try await Self.server(mx: "127.0.0.18") { configuration in
            configuration.delivery.delayNotice = 1
        }
        var script = ScriptedMXServer.Script()
        script.recipient = { _, _ in "451 4.7.1 greylisted" }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.18", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        // Retried every second: once the notice is out, two more attempts must not add one.
        let attempts = { (try? server.server.queue.entries().first?.recipients.first?.attempts ?? 0) ?? 0 }
        var attemptsAtNotice = 0
        #expect(
            await eventually {
                guard !server.messages(in: "alice@petrel.test").isEmpty else { return false }
                attemptsAtNotice = attempts()  // read after seeing the notice: counts every attempt before it
                return true
            }
        )
        #expect(await eventually { attempts() >= attemptsAtNotice + 2 })
        let reports = server.messages(in: "alice@petrel.test")
        try #require(reports.count == 1, "one notice, however many attempts")
        #expect(reports[0].contains("Subject: Delayed Mail (still being retried)"))
        #expect(reports[0].contains("Action: delayed"))
        #expect(reports[0].contains("Diagnostic-Code: smtp; 451 4.7.1 greylisted"))
        let entries = try server.server.queue.entries()
        #expect(entries.first?.recipients.first?.state == .pending, "still being retried")
        #expect(entries.first?.warned == true)
        await receiver.stop()
        try await server.stop()
    }

    @Test func manyRecipientsAreSplitIntoTransactionsOfFifty() async throws {
        let server = try await Self.server(mx: "127.0.0.19")
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.19")
        let recipients = (1...60).map { "user\($0)@remote.test" }
        try await Self.submit(server, to: recipients)
        let messages = await receiver.waitForMessages(2)
        #expect(messages.map(\.recipients.count).sorted() == [10, 50])
        #expect(Set(messages.flatMap(\.recipients)) == Set(recipients))
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        await receiver.stop()
        try await server.stop()
    }

    @Test func aServerThatRefusesSTARTTLSGetsTheMailInPlaintext() async throws {
        let server = try await Self.server(mx: "127.0.0.20")
        var script = ScriptedMXServer.Script()
        script.startTLSReply = "454 4.7.0 TLS not available due to temporary reason"
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.20", script: script)
        try await Self.submit(server, to: ["bob@remote.test"])
        #expect(await receiver.waitForMessages(1).count == 1)
        #expect(receiver.connections == 1)
        #expect(try await Self.waitForEmptyQueue(server).isEmpty)
        await receiver.stop()
        try await server.stop()
    }
}

/// A TLS server on port 465 (TLS from the first octet) with a self-signed certificate,
/// speaking TLS versions up to `maximumVersion` only; it counts completed handshakes and closes.
final class TLSOnlyServer: Sendable {
    let channel: any Channel
    let port: Int
    let certificateFile: String
    private let completed = NIOLockedValueBox(0)
    var handshakes: Int { self.completed.withLockedValue { $0 } }

    private init(channel: any Channel, certificateFile: String) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.certificateFile = certificateFile
    }

    static func start(host: String, maximumVersion: TLSVersion) async throws -> TLSOnlyServer {
        let certificate = try SelfSignedCertificate(hostname: "relay.test")
        let file = try makeTemporaryDirectory() + "/relay.pem"
        try certificate.certificatePEM.write(toFile: file, atomically: true, encoding: .utf8)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificatePEM.utf8)).map {
                .certificate($0)
            },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem))
        )
        configuration.minimumTLSVersion = .tlsv1
        configuration.maximumTLSVersion = maximumVersion
        let context = try NIOSSLContext(configuration: configuration)
        let counter = NIOLockedValueBox<TLSOnlyServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(
                        HandshakeCounter { counter.withLockedValue { $0 }?.completed.withLockedValue { $0 += 1 } }
                    )
                }
            }
            .bind(host: host, port: 465).get()
        let server = TLSOnlyServer(channel: channel, certificateFile: file)
        counter.withLockedValue { $0 = server }
        return server
    }

    func stop() async {
        try? await self.channel.close()
    }

    final class HandshakeCounter: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let completed: @Sendable () -> Void

        init(completed: @escaping @Sendable () -> Void) { self.completed = completed }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
                self.completed()
                context.close(promise: nil)
            }
            context.fireUserInboundEventTriggered(event)
        }
    }
}
