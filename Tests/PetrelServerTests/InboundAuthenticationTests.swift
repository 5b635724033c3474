import Accounts
import DNSCore
import Foundation
import MailCore
import PetrelConfiguration
import PetrelServer
import PetrelTestSupport
import ServerTestSupport
import Testing

@testable import MailIntake

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
        from: String = "joe@football.example.com",
        helo: String = "mail.football.example.com",
        replyWithin: Duration = .seconds(10).stretched
    ) async throws
        -> SMTPTestReadResult
    {
        let client = try await server.connectAndGreet(helo: helo)
        try await client.startData(from: from, to: ["alice@example.test"])
        try await client.sendRaw(Array((content + ".\r\n").utf8))
        let reply = await client.read(timeout: replyWithin)
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
            configuration.inbound.dmarcReject = .quarantine
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
            // RFC 8601 allows the authserv-id as a quoted string; a final dot names the same host.
            + "Authentication-Results: \"mx.petrel.test\"; dkim=pass header.d=quoted.example\r\n"
            + "Authentication-Results: (ours, honest) \"MX.Petrel.Test.\"; spf=pass smtp.mailfrom=dotted.example\r\n"
            + "From: a@elsewhere.example\r\nSubject: trust me\r\n\r\nbody\r\n"
        #expect(try await Self.deliver(server, content: content, from: "a@elsewhere.example").reply?.code == 250)
        let stored = try #require(server.messages(in: "alice@example.test").first)
        #expect(!stored.contains("bank.example") && !stored.contains("we promise"))
        #expect(!stored.contains("quoted.example") && !stored.contains("dotted.example"))
        #expect(stored.contains("Authentication-Results: relay.example; spf=pass\n"), "other servers' results stay")
        #expect(stored.components(separatedBy: "Authentication-Results: mx.petrel.test;").count == 2, "only ours")
        try await server.stop()
    }

    /// What DMARC judges must be what a mail reader will show. Before, each of these was
    /// delivered with dmarc=permerror: a PayPal From followed by an unreadable one reached the
    /// inbox, and a header section that Petrel ended at a line with no colon hid the From (and
    /// any Authentication-Results) a mail reader shows after it. On port 25 they are refused
    /// now (RFC 5322 §3.6 asks for exactly one From; RFC 9989 leaves such mail to the receiver).
    static let unreadableAuthors = [
        ("two From fields", "From: PayPal <service@paypal.com>\r\nFrom: <\r\nSubject: x\r\n\r\nbody\r\n", 550, "5.7.1"),
        ("a line that is no field, then From", "X-Junk\r\nFrom: service@paypal.com\r\n\r\nbody\r\n", 554, "5.6.0"),
        (
            "forged results after a line that is no field",
            "From: a@elsewhere.example\r\nnot a field\r\nAuthentication-Results: mx.petrel.test; dmarc=pass\r\n\r\nx\r\n",
            554, "5.6.0"
        ),
        ("a continuation line first", " folded\r\nFrom: a@elsewhere.example\r\n\r\nbody\r\n", 554, "5.6.0"),
        ("no header at all", "just a line\r\n\r\nand another\r\n", 554, "5.6.0"),
        ("no From", "Subject: hi\r\n\r\nbody\r\n", 550, "5.7.1"),
        ("an unreadable From", "From: Alice <alice@elsewhere.example\r\n\r\nbody\r\n", 550, "5.7.1"),
        ("a From without a domain", "From: someone\r\n\r\nbody\r\n", 550, "5.7.1"),
        // Petrel read the last angle-addr (evil.example, which could pass DMARC), a reader the first.
        ("two addresses in one mailbox", "From: <service@paypal.com> <x@evil.example>\r\n\r\nbody\r\n", 550, "5.7.1"),
    ]

    @Test func authorsPetrelCannotReadAreRefused() async throws {
        let server = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=reject"))
        for (shape, content, code, enhanced) in Self.unreadableAuthors {
            let reply = try await Self.deliver(server, content: content, from: "a@elsewhere.example")
            #expect(
                reply.reply?.code == code && reply.reply?.text.hasPrefix(enhanced + " ") == true,
                "\(shape): \(reply)"
            )
        }
        #expect(server.allMessages().isEmpty)
        try await server.stop()
    }

    /// One From field with several addresses is readable: each domain is evaluated and the
    /// strictest failing policy applies (RFC 9989 §11.5), as before.
    @Test func oneFromFieldWithSeveralAddressesIsJudgedByEach() async throws {
        let server = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=reject"))
        let both = "From: a@elsewhere.example, joe@football.example.com\r\nSubject: x\r\n\r\nbody\r\n"
        let reply = try await Self.deliver(server, content: both, from: "a@elsewhere.example")
        #expect(reply.reply?.code == 550, "football.example.com's p=reject applies: \(reply)")
        let elsewhere = "From: a@elsewhere.example, b@elsewhere.example\r\nSubject: x\r\n\r\nbody\r\n"
        #expect(try await Self.deliver(server, content: elsewhere, from: "a@elsewhere.example").reply?.code == 250)
        try await server.stop()
    }

    /// A bounce (MAIL FROM:<>) from a domain with p=reject and no DKIM signature: SPF's identity
    /// for the null reverse path is postmaster@ the HELO name (RFC 7208 §2.4), and RFC 9989 counts
    /// it. Before, DMARC ignored it, so such bounces failed DMARC and were refused.
    @Test func aBounceIsJudgedByItsHELOIdentity() async throws {
        let zone = Self.zone(dmarc: nil)
        zone.addTXT("_dmarc.c.example", ["v=DMARC1; p=reject"])
        zone.addTXT("mail.c.example", ["v=spf1 ip4:127.0.0.0/8 -all"])
        let server = try await Self.server(zone)
        let bounce =
            "From: Mail Delivery System <postmaster@c.example>\r\nSubject: Undelivered Mail\r\n\r\nSorry.\r\n"
        let reply = try await Self.deliver(server, content: bounce, from: "", helo: "mail.c.example")
        #expect(reply.reply?.code == 250, "\(reply)")
        let stored = try #require(server.messages(in: "alice@example.test").first)
        #expect(Self.header(stored).contains("\tspf=pass ("))
        #expect(Self.header(stored).contains("smtp.helo=mail.c.example;"))
        #expect(Self.header(stored).contains("\tdmarc=pass (SPF mail.c.example is aligned with c.example)"))
        // From another HELO name (which has no SPF record: spf=none), the same bounce is refused.
        let forged = try await Self.deliver(server, content: bounce, from: "", helo: "other.example")
        #expect(forged.reply?.code == 550, "\(forged)")
        try await server.stop()
    }

    /// A legacy pct=0 (domains rolling DMARC out) applies the policy one step more leniently
    /// (RFC 7489 §6.6.4); RFC 9989 names t=y its analogue. Before, pct=0 was ignored and
    /// p=quarantine sent their unaligned mail to Junk.
    @Test func pctZeroIsReadAsTesting() async throws {
        let forged = Self.signed.replacingOccurrences(of: "Joe.", with: "Joe, who wants your password.")
        let quarantine = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=quarantine; pct=0"))
        #expect(try await Self.deliver(quarantine, content: forged).reply?.code == 250)
        #expect(quarantine.messages(in: "alice@example.test").count == 1, "the inbox, not Junk")
        try await quarantine.stop()
        let reject = try await Self.server(Self.zone(dmarc: "v=DMARC1; p=reject; pct=0"))
        #expect(try await Self.deliver(reject, content: forged).reply?.code == 250, "quarantined, not refused")
        let junk = reject.dataDirectory + "/mail/alice@example.test/.Junk/new"
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: junk)) ?? []).count == 1)
        #expect(reject.messages(in: "alice@example.test").isEmpty)
        try await reject.stop()
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

/// A DNS server that does not answer: every lookup waits until it is cancelled (or an hour).
struct StallingResolver: DNSResolving {
    func lookup(_ name: DNSName, _ type: DNSRecordType) async -> DNSLookupResult {
        try? await Task.sleep(for: .seconds(3600))
        return .failure(DNSQuestion(name: name, type: type), .timeout)
    }
}

extension InboundAuthenticationTests {
    /// RFC 7208 §4.6.4: a sender whose DNS is slow gets a temporary error within the time limit,
    /// not a session held for as long as the lookups take. The resolver never answers, so the
    /// reply can only come from the time limit; how soon it comes depends on the machine's load
    /// (about 3 s on a quiet one: 1 s for SPF, 1 s for DKIM and DMARC), and only a generous
    /// bound is checked.
    @Test func slowDNSIsCutShort() async throws {
        let server = try await TestServer.start(
            domains: ["example.test"],
            resolver: StallingResolver()
        ) { configuration in
            configuration.inbound.timeLimit = 1
        }
        try server.server.accounts.addMailbox(AccountAddress(validating: "alice@example.test"), password: nil)
        let reply = try await Self.deliver(
            server,
            content: "From: someone@slow.example\r\nSubject: hi\r\n\r\nhello\r\n",
            from: "someone@slow.example",
            replyWithin: .seconds(60).stretched
        )
        #expect(reply.reply?.code == 451 && reply.reply?.text.hasPrefix("4.7.5 ") == true, "\(reply)")
        try await server.stop()
    }
}
