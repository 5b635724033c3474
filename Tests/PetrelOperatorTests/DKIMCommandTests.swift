import DNSCore
import Foundation
import MailAuth
import PetrelTestSupport
import ServerTestSupport
import Testing

/// `petrel dkim keygen|list|sign`, as an operator runs them.
struct DKIMCommandTests {
    @Test func keygenPublishesAndSignVerifies() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/petrel.toml"
        try "data_dir = \"data\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        func petrel(_ arguments: [String], input: String? = nil) async throws -> PetrelProcess.Result {
            try await PetrelProcess.run(
                ["dkim"] + arguments + ["--config", config],
                input: input,
                directory: directory
            )
        }
        let rsa = try await petrel(["keygen", "Example.TEST"])
        #expect(rsa.status == 0, "\(rsa.standardError)")
        #expect(rsa.standardOutput.contains("\npetrel._domainkey.example.test. IN TXT ( \"v=DKIM1; k=rsa; p=MIIBIjAN"))
        let ed = try await petrel(["keygen", "example.test", "--selector", "ed", "--algorithm", "ed25519"])
        #expect(ed.standardOutput.contains("\ned._domainkey.example.test. IN TXT ( \"v=DKIM1; k=ed25519; p="))
        let key = directory + "/data/dkim/example.test/petrel.pem"
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let again = try await petrel(["keygen", "example.test"])
        #expect(again.status == 1 && again.standardError.contains("exists: choose another --selector"))
        let bad = try await petrel(["keygen", "example.test", "--algorithm", "dsa"])
        #expect(bad.status == 64)
        let badSelector = try await petrel(["keygen", "example.test", "--selector", "a/b"])
        #expect(badSelector.status == 1 && badSelector.standardError.contains("not a valid selector"))

        // Publish what `list` prints, sign a message, verify both signatures.
        let list = try await petrel(["list", "example.test"])
        let zone = InMemoryZone()
        for line in list.standardOutput.split(separator: "\n") {
            let name = String(line.prefix { $0 != " " }.dropLast())
            let strings = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map {
                String($0.element)
            }
            zone.addTXT(name, [strings.joined()])
        }
        let signed = try await petrel(
            ["sign", "--domain", "example.test"],
            input: "From: Alice <alice@example.test>\nTo: bob@remote.test\nSubject: hi\n\nHello.\n"
        )
        #expect(signed.status == 0, "\(signed.standardError)")
        var scanner = MessageScanner(now: Int(Date().timeIntervalSince1970))
        scanner.append(Array(signed.standardOutput.utf8))
        let verdicts = await DKIMVerifier(resolver: zone).verify(scanner.finish())
        #expect(verdicts.map(\.result) == [.pass, .pass], "\(verdicts.map(\.reason))")
        #expect(Set(verdicts.compactMap(\.selector)) == ["petrel", "ed"])

        let none = try await petrel(["sign", "--domain", "other.test"], input: "From: a@other.test\n\nx\n")
        #expect(none.status == 1 && none.standardError.contains("no DKIM key for other.test"))
    }
}
