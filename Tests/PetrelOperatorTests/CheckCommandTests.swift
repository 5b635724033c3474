import Foundation
import PetrelTestSupport
import ServerTestSupport
import Testing

@testable import MailIntake

/// `petrel check`, as an operator runs it, through Petrel's resolver against the test DNS server
/// on loopback serving the records of a DKIM test vector's domain, an SPF record and a DMARC policy.
@Suite(.serialized) struct CheckCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MailAuthTests/Fixtures/dkim")

    /// The vector's public key, as its domain publishes it.
    static let key =
        try! "v=DKIM1; k=rsa; p="
        + String(contentsOf: Self.fixtures.appendingPathComponent("keys/rsa2048-dkimpy.pub.b64"), encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines)

    static func dnsServer() throws -> TestDNSServer {
        try TestDNSServer(extraZones: [
            "football.example.com": [
                "@ " + TestDNSServer.txt("v=spf1 ip4:192.0.2.0/24 include:_spf.football.example.com -all"),
                "_spf " + TestDNSServer.txt("v=spf1 ip6:2001:db8::/32 ~all"),
                "rsa2048._domainkey " + TestDNSServer.txt(Self.key),
                "_dmarc " + TestDNSServer.txt("v=DMARC1; p=reject; rua=mailto:dmarc@football.example.com"),
            ].joined(separator: "\n")
        ])
    }

    static var message: String {
        try! String(
            contentsOf: Self.fixtures.appendingPathComponent("messages/gen-rsa2048-relaxed-relaxed.eml"),
            encoding: .utf8
        )
    }

    @Test func spfSaysWhichTermMatched() async throws {
        let server = try Self.dnsServer()
        defer { server.stop() }
        let dns = "127.0.0.1:\(server.port)"
        let pass = try await PetrelProcess.run([
            "check", "spf", "--dns", dns, "--ip", "192.0.2.7", "--sender", "joe@football.example.com",
            "--helo", "mail.football.example.com",
        ])
        #expect(pass.status == 0, "\(pass.standardError)")
        #expect(
            pass.standardOutput == """
                spf mailfrom=joe@football.example.com: pass (ip4:192.0.2.0/24 matched in the record of football.example.com)
                spf helo=postmaster@mail.football.example.com: none (mail.football.example.com has no SPF record)

                """
        )
        let soft = try await PetrelProcess.run([
            "check", "spf", "--dns", dns, "--ip", "2001:db8::25", "--sender", "<>", "--helo", "football.example.com",
        ])
        #expect(
            soft.standardOutput
                == "spf helo=postmaster@football.example.com: pass (include:_spf.football.example.com matched in the record of football.example.com)\n"
        )
        let fail = try await PetrelProcess.run([
            "check", "spf", "--dns", dns, "--ip", "203.0.113.1", "--sender", "x@football.example.com", "--helo", "h",
        ])
        #expect(
            fail.standardOutput.hasPrefix(
                "spf mailfrom=x@football.example.com: fail (-all matched in the record of football.example.com)\n"
            )
        )
    }

    @Test func dkimAndDMARCVerdicts() async throws {
        let server = try Self.dnsServer()
        defer { server.stop() }
        let dns = "127.0.0.1:\(server.port)"
        let dkim = try await PetrelProcess.run(["check", "dkim", "--dns", dns], input: Self.message)
        #expect(dkim.status == 0, "\(dkim.standardError)")
        #expect(
            dkim.standardOutput
                == "dkim 1: pass d=football.example.com s=rsa2048 a=rsa-sha256 (signature verified with a 2048-bit RSA key)\n"
        )
        // The same file with LF line ends (as a Maildir keeps it) verifies the same.
        let lf = try await PetrelProcess.run(
            ["check", "dkim", "--dns", dns],
            input: Self.message.replacingOccurrences(of: "\r\n", with: "\n")
        )
        #expect(lf.standardOutput == dkim.standardOutput)

        let forged = Self.message.replacingOccurrences(of: "Joe.", with: "Joe, send money.")
        let dmarc = try await PetrelProcess.run(
            [
                "check", "dmarc", "--dns", dns, "--ip", "203.0.113.1", "--sender", "joe@football.example.com",
                "--helo", "evil.example",
            ],
            input: forged
        )
        #expect(dmarc.status == 0, "\(dmarc.standardError)")
        let lines = dmarc.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("spf mailfrom=joe@football.example.com: fail (") == true)
        #expect(
            lines.contains(
                "dkim 1: fail d=football.example.com s=rsa2048 a=rsa-sha256 (body hash mismatch (the body was changed))"
            )
        )
        #expect(
            lines.contains(
                "dmarc: fail from=football.example.com policy=reject record=_dmarc.football.example.com (no aligned SPF or DKIM pass for football.example.com; policy reject)"
            )
        )
        #expect(
            lines.contains("action: refuse with 550 5.7.1 Email rejected per DMARC policy for football.example.com")
        )
        #expect(lines.contains { $0.hasPrefix("Authentication-Results: ") })

        let passing = try await PetrelProcess.run(
            [
                "check", "dmarc", "--dns", dns, "--ip", "192.0.2.7", "--sender", "joe@football.example.com", "--helo",
                "h",
            ],
            input: Self.message
        )
        #expect(passing.standardOutput.contains("\ndmarc: pass from=football.example.com policy=reject"))
        #expect(passing.standardOutput.contains("\naction: deliver\n"))

        // A bounce (MAIL FROM:<>) from a p=reject domain, unsigned: its HELO identity passes SPF
        // and counts for DMARC (RFC 7208 §2.4). Before, it was refused.
        let bounce = try await PetrelProcess.run(
            [
                "check", "dmarc", "--dns", dns, "--ip", "192.0.2.7", "--sender", "<>", "--helo",
                "football.example.com",
            ],
            input: "From: Mail Delivery System <postmaster@football.example.com>\nSubject: Undelivered\n\nSorry.\n"
        )
        #expect(
            bounce.standardOutput.contains(
                "\ndmarc: pass from=football.example.com policy=reject record=_dmarc.football.example.com (SPF football"
            )
        )
        #expect(bounce.standardOutput.contains("\naction: deliver\n"), "\(bounce.standardOutput)")

        // Two From fields: refused before DMARC has its say, as the server does.
        let twoFrom = try await PetrelProcess.run(
            [
                "check", "dmarc", "--dns", dns, "--ip", "192.0.2.7", "--sender", "joe@football.example.com", "--helo",
                "h",
            ],
            input: "From: PayPal <service@paypal.example>\n" + Self.message
        )
        #expect(
            twoFrom.standardOutput.contains(
                "\naction: refuse with 550 5.7.1 Message refused: the message has 2 From fields"
            ),
            "\(twoFrom.standardOutput)"
        )
    }

    @Test func badArgumentsSayWhatToDo() async throws {
        let result = try await PetrelProcess.run([
            "check", "spf", "--dns", "nowhere", "--ip", "1.2.3.4", "--sender", "a@b.c", "--helo", "h",
        ])
        #expect(result.status == 64)
        #expect(result.standardError.contains("--dns takes an IP address and port"))
        let badIP = try await PetrelProcess.run([
            "check", "spf", "--dns", "127.0.0.1:53", "--ip", "1.2.3", "--sender", "a@b.c", "--helo", "h",
        ])
        #expect(badIP.status == 64 && badIP.standardError.contains("'1.2.3' is not an IP address"))
    }
}
