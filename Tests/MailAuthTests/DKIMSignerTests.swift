import DNSCore
import Foundation
import MailAuth
import MailCore
import PetrelTestSupport
import Testing

/// Signing: what Petrel signs verifies with Petrel's verifier (and, in Scripts/interop/interop_auth.py,
/// with dkimpy); what is changed afterwards does not.
struct DKIMSignerTests {
    static let message = Array(
        ("From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: Lunch?\r\n"
            + "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n"
            + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + "Noon at  the usual place?  \r\n.\r\n\r\n\r\n").utf8
    )

    static func verify(_ message: [UInt8], keys: [(String, DKIMPrivateKey)]) async -> [DKIMVerdict] {
        let zone = InMemoryZone()
        for (selector, key) in keys { zone.addTXT("\(selector)._domainkey.example.test", [key.record]) }
        var scanner = MessageScanner(now: 1_800_000_000)
        scanner.append(message)
        return await DKIMVerifier(resolver: zone).verify(scanner.finish())
    }

    @Test(arguments: DKIMPrivateKey.Kind.allCases)
    func signaturesVerify(_ kind: DKIMPrivateKey.Kind) async throws {
        let key = try DKIMPrivateKey.generate(kind)
        let signer = DKIMSigner(domain: "Example.TEST", selector: "s1", key: key)
        let field = try signer.signatureField(for: Self.message, timestamp: 1_795_000_000)
        #expect(
            field.hasPrefix(
                "DKIM-Signature: v=1; a=\(kind == .rsa ? "rsa-sha256" : "ed25519-sha256"); c=relaxed/relaxed;"
            )
        )
        #expect(field.split(separator: "\r\n").allSatisfy { $0.utf8.count <= 998 })
        let signed = Array(field.utf8) + Self.message
        let verdicts = await Self.verify(signed, keys: [("s1", key)])
        #expect(verdicts.map(\.result) == [.pass], "\(verdicts.map(\.reason))")
        #expect(verdicts.first?.domain == "example.test")

        // Changed body, changed signed header, an added From or Subject: all fail.
        func changed(_ from: String, _ to: String) -> [UInt8] {
            Array(String(decoding: signed, as: UTF8.self).replacingOccurrences(of: from, with: to).utf8)
        }
        for tampered in [
            changed("Noon at", "Midnight at"),
            changed("Subject: Lunch?", "Subject: Lunch!"),
            changed("To: bob@remote.test\r\n", "To: bob@remote.test\r\nFrom: ceo@example.test\r\n"),
            changed("MIME-Version: 1.0\r\n", "MIME-Version: 1.0\r\nSubject: urgent\r\n"),
            changed("MIME-Version: 1.0\r\n", "MIME-Version: 1.0\r\nCc: eve@example.test\r\n"),
        ] {
            #expect(await Self.verify(tampered, keys: [("s1", key)]).map(\.result) == [.fail])
        }
        // Relaxed canonicalization tolerates what relays do to white space and header case.
        let rewrapped = changed("Subject: Lunch?", "subject:   Lunch?")
        #expect(await Self.verify(rewrapped, keys: [("s1", key)]).map(\.result) == [.pass])
    }

    @Test func twoSignaturesRSAAndEd25519() async throws {
        let rsa = try DKIMPrivateKey.generate(.rsa)
        let ed = try DKIMPrivateKey.generate(.ed25519)
        let first = try DKIMSigner(domain: "example.test", selector: "rsa", key: rsa)
            .signatureField(for: Self.message, timestamp: 1_795_000_000)
        let second = try DKIMSigner(domain: "example.test", selector: "ed", key: ed)
            .signatureField(for: Self.message, timestamp: 1_795_000_000)
        let verdicts = await Self.verify(Array((second + first).utf8) + Self.message, keys: [("rsa", rsa), ("ed", ed)])
        #expect(verdicts.map(\.result) == [.pass, .pass])
        #expect(verdicts.map(\.algorithm) == [.ed25519SHA256, .rsaSHA256])
    }

    @Test func keysSurviveTheirPEM() throws {
        for kind in DKIMPrivateKey.Kind.allCases {
            let key = try DKIMPrivateKey.generate(kind)
            let again = try DKIMPrivateKey(pem: key.pem)
            #expect(again.kind == kind && again.record == key.record)
            #expect(key.pem.hasPrefix("-----BEGIN PRIVATE KEY-----"), "PKCS#8")
        }
        #expect(throws: (any Error).self) {
            try DKIMPrivateKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        }
        // The RSA key of the RFC 8463 example (PKCS#1, 1024 bits) still reads.
        let url = DKIMVectorTests.fixtures.appendingPathComponent("keys/rsa1024-rfc8463.pem")
        #expect(try DKIMPrivateKey(pem: String(contentsOf: url, encoding: .utf8)).kind == .rsa)
    }

    @Test func whatIsSigned() {
        var scanner = MessageScanner(now: 0, dkim: false)
        scanner.append(Self.message)
        let header = scanner.finish().header!
        #expect(header.fields.count == 7)
        let names = DKIMSigner.signedHeaders(header)
        #expect(names.filter { $0 == "from" }.count == 2, "From twice: once for it, once against another")
        #expect(names.filter { $0 == "cc" }.count == 1, "absent, but signed so none can be added")
        #expect(names.contains("content-type") && !names.contains("received"))
    }
}
