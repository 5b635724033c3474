import Accounts
import DNSCore
import Foundation
import MailCore
import PetrelServer
import PetrelTestSupport
import Testing

/// SPF, DKIM and DMARC on the live server: what lands in the Maildir, what is refused, what goes
/// to Junk. The DNS is an in-memory zone with the key of a DKIM test vector (Tests/MailAuthTests/
/// Fixtures/dkim, RSA-2048, d=football.example.com).
@Suite struct InboundAuthenticationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MailAuthTests/Fixtures/dkim")

    /// Signed by football.example.com (relaxed/relaxed), From: joe@football.example.com.
    static let signed = try! String(
        contentsOf: Self.fixtures.appendingPathComponent("messages/gen-rsa2048-relaxed-relaxed.eml"),
        encoding: .utf8
    )

    static let key =
        "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA5Ru5WVhkPiBuE+mOf29uqontUfoQpcWX04sA/V6dRmZ0I2kRHOSKYXLW84sqPiWyfKH4WaP7f0p6RvENyIqFjCYWDPxSX5Ck/rj0jUzQ6FKloUb9M/0hhdUy2xa7przy7wudLu7WpgxyMLogPZfWMV369vvPefyvuXF8B3rCuy5qSNyvnDf0Dn4/blILfyw5df4JWJIj0FfXxc3LMMLQM+Nn8q71iJmH5qXuB78GWUjT7erEXnrXdWKZimM9l6fMSOb6EBm0AwNVR+mOGwt05LPrSHFrwKJSNRB5gBOzXfmjdUpghIq+wLF1trz+oJt5CcZs45GPjiuyUomI+HgFpQIDAQAB"

    static func zone(dmarc: String?) -> InMemoryZone {
        let zone = InMemoryZone()
        zone.addTXT("rsa2048._domainkey.football.example.com", [Self.key])
        zone.addTXT("football.example.com", ["v=spf1 ip4:192.0.2.0/24 -all"])
        if let dmarc { zone.addTXT("_dmarc.football.example.com", [dmarc]) }
        return zone
    }

    static func server(
        _ zone: InMemoryZone,
        configure: @Sendable @escaping (inout Configuration) -> Void = { _ in }
    ) async throws -> TestServer {
        let server = try await TestServer.start(domains: ["example.test"], resolver: zone, configure: configure)
        try server.server.accounts.addMailbox(
            AccountAddress(validating: "alice@example.test"),
            password: PasswordCredentials.make(password: "correct horse")
        )
        return server
    }

    /// Sends `content` (CRLF lines, no dot-stuffing needed) and returns the reply to the data.
    static func deliver(
        _ server: TestServer,
        content: String,
        from: String = "joe@football.example.com"
    ) async throws
        -> SMTPTestReadResult
    {
        let client = try await server.connectAndGreet(helo: "mail.football.example.com")
        try await client.startData(from: from, to: ["alice@example.test"])
        try await client.sendRaw(Array((content + ".\r\n").utf8))
        let reply = await client.read()
        try await client.send("QUIT")
        await client.close()
        return reply
    }

    static func header(_ message: String) -> String {
        String(message[..<(message.range(of: "\n\n")?.lowerBound ?? message.endIndex)])
    }

    @Test func signedMailFromAStrictDomainPasses() async throws {
        let server = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=reject"))
        let reply = try await Self.deliver(server, content: Self.signed)
        #expect(reply.reply?.code == 250, "\(reply)")
        let stored = try #require(server.messages(in: "alice@example.test").first)
        let header = Self.header(stored)
        // 127.0.0.1 is not in the SPF record: DKIM carries DMARC alone.
        #expect(header.contains("\tspf=fail ("))
        #expect(header.contains("smtp.mailfrom=joe@football.example.com;"))
        #expect(
            header.contains(
                "\tdkim=pass (signature verified with a 2048-bit RSA key) header.d=football.example.com header.s=rsa2048"
            )
        )
        #expect(
            header.contains(
                "\tdmarc=pass (DKIM d=football.example.com is aligned with football.example.com) header.from=football.example.com policy.dmarc=reject"
            )
        )
        #expect(
            stored.hasSuffix(Self.signed.replacingOccurrences(of: "\r\n", with: "\n")),
            "the message itself is untouched"
        )
        try await server.stop()
    }

    @Test func forgedMailUnderRejectIsRefused() async throws {
        let server = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=reject"))
        let forged = Self.signed.replacingOccurrences(of: "Joe.", with: "Joe, who wants your password.")
        let reply = try await Self.deliver(server, content: forged)
        #expect(reply.reply?.code == 550)
        #expect(reply.reply?.text == "5.7.1 Email rejected per DMARC policy for football.example.com")
        #expect(server.allMessages().isEmpty)
        #expect(
            ((try? FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/incoming")) ?? []).isEmpty
        )
        try await server.stop()
    }

    @Test func forgedMailUnderQuarantineGoesToJunk() async throws {
        let server = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=quarantine"))
        let forged = Self.signed.replacingOccurrences(of: "Joe.", with: "Joe, who wants your password.")
        #expect(try await Self.deliver(server, content: forged).reply?.code == 250)
        #expect(server.messages(in: "alice@example.test").isEmpty)
        let junk = server.dataDirectory + "/mail/alice@example.test/.Junk"
        let files = try FileManager.default.contentsOfDirectory(atPath: junk + "/new")
        #expect(files.count == 1)
        let stored = try String(contentsOfFile: junk + "/new/" + files[0], encoding: .utf8)
        #expect(Self.header(stored).contains("\tdmarc=fail ("))
        #expect(FileManager.default.fileExists(atPath: junk + "/maildirfolder"))
        try await server.stop()
    }

    @Test func operatorsCanSoftenThePolicy() async throws {
        let server = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=reject")) { configuration in
            configuration.mailAuthentication.dmarcReject = .quarantine
        }
        let forged = Self.signed.replacingOccurrences(of: "Joe.", with: "Joe!")
        #expect(try await Self.deliver(server, content: forged).reply?.code == 250)
        #expect(FileManager.default.fileExists(atPath: server.dataDirectory + "/mail/alice@example.test/.Junk/new"))
        try await server.stop()
    }

    @Test func dnsTroubleDefersOnlyWhatCouldBeRejected() async throws {
        let zone = Self.zone(dmarc: nil)
        zone.addTimeout("_dmarc.football.example.com")
        zone.addTimeout("_dmarc.elsewhere.example")
        let server = try await Self.server(zone)
        // An aligned DKIM pass: DMARC would pass whatever the record says; delivered.
        #expect(try await Self.deliver(server, content: Self.signed).reply?.code == 250)
        // Unsigned, from a domain whose policy cannot be had: try again later.
        let unsigned = "From: someone@elsewhere.example\r\nSubject: hi\r\n\r\nhello\r\n"
        let reply = try await Self.deliver(server, content: unsigned, from: "someone@elsewhere.example")
        #expect(reply.reply?.code == 451 && reply.reply?.text.hasPrefix("4.7.5 ") == true, "\(reply)")
        try await server.stop()
    }

    @Test func resultsClaimingToBeOursAreRemoved() async throws {
        let server = try await Self.server(Self.zone(dmarc: nil))
        let content =
            "Authentication-Results: MX.PETREL.TEST; dkim=pass header.d=bank.example\r\n"
            + "Authentication-Results: relay.example; spf=pass\r\n"
            + "Authentication-Results: mx.petrel.test (we promise);\r\n\tdmarc=pass\r\n"
            + "From: a@elsewhere.example\r\nSubject: trust me\r\n\r\nbody\r\n"
        #expect(try await Self.deliver(server, content: content, from: "a@elsewhere.example").reply?.code == 250)
        let stored = try #require(server.messages(in: "alice@example.test").first)
        #expect(!stored.contains("bank.example") && !stored.contains("we promise"))
        #expect(stored.contains("Authentication-Results: relay.example; spf=pass\n"), "other servers' results stay")
        #expect(stored.components(separatedBy: "Authentication-Results: mx.petrel.test;").count == 2, "only ours")
        try await server.stop()
    }

    /// A message without any header field is kept whole; its first line is body.
    @Test func oddContentIsKeptExactly() async throws {
        let server = try await Self.server(Self.zone(dmarc: nil))
        let content = "just a line\r\n\r\nand another\r\n"
        #expect(try await Self.deliver(server, content: content, from: "a@elsewhere.example").reply?.code == 250)
        let stored = try #require(server.messages(in: "alice@example.test").first)
        let lines = stored.components(separatedBy: "\n")
        let first = try #require(lines.firstIndex(of: "just a line"))
        #expect(lines[first - 2] == "\tfor <alice@example.test>;", "right after Received")
        #expect(lines[first...].joined(separator: "\n") == "just a line\n\nand another\n")
        #expect(stored.contains("\tdmarc=permerror ("), "no From field")
        try await server.stop()
    }

    @Test func loggedInUsersAreNotChecked() async throws {
        let server = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=reject"))
        let client = try await server.connect(.submissions)
        try await client.expect(220)
        try await client.send("EHLO laptop")
        try await client.expect(250)
        try await client.send("AUTH PLAIN \(Base64.encode(Array("\0alice@example.test\0correct horse".utf8)))")
        try await client.expect(235)
        let content = "Authentication-Results: mx.petrel.test; dmarc=pass\r\nFrom: alice@example.test\r\n\r\nhi\r\n"
        try await client.startData(from: "alice@example.test", to: ["alice@example.test"])
        try await client.sendRaw(Array((content + ".\r\n").utf8))
        try await client.expect(250)
        let stored = try #require(server.messages(in: "alice@example.test").first)
        #expect(!stored.contains("Authentication-Results"), "nothing checked, and the forged field is gone")
        try await server.stop()
    }
}

/// A DNS server that takes its time: every answer comes after `delay`.
struct StallingResolver: DNSResolving {
    var delay: Duration

    func lookup(_ name: DNSName, _ type: DNSRecordType) async -> DNSLookupResult {
        try? await Task.sleep(for: self.delay)
        return .failure(DNSQuestion(name: name, type: type), .timeout)
    }
}

extension InboundAuthenticationTests {
    /// RFC 7208 §4.6.4: a sender whose DNS is slow gets a temporary error within the time limit,
    /// not a session held for as long as the lookups take.
    @Test func slowDNSIsCutShort() async throws {
        let server = try await TestServer.start(
            domains: ["example.test"],
            resolver: StallingResolver(delay: .seconds(30).stretched)
        ) { configuration in
            configuration.mailAuthentication.timeLimit = 1
        }
        try server.server.accounts.addMailbox(AccountAddress(validating: "alice@example.test"), password: nil)
        let started = ContinuousClock.now
        let reply = try await Self.deliver(
            server,
            content: "From: someone@slow.example\r\nSubject: hi\r\n\r\nhello\r\n",
            from: "someone@slow.example"
        )
        let elapsed = ContinuousClock.now - started
        #expect(reply.reply?.code == 451 && reply.reply?.text.hasPrefix("4.7.5 ") == true, "\(reply)")
        #expect(elapsed < .seconds(10).stretched, "\(elapsed)")
        try await server.stop()
    }
}
