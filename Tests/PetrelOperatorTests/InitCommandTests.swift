import Accounts
import Foundation
import MailStore
import PetrelConfiguration
import PetrelServer
import PetrelTestSupport
import ServerTestSupport
import Testing

/// `petrel init`: what it writes, that it all loads and works together, and that it overwrites
/// nothing unless forced.
@Suite struct InitCommandTests {
    @Test func initWritesAWorkingSetUp() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/etc/petrel.toml"
        let arguments = [
            "init", "--domain", "example.com", "--domain", "example.org", "--hostname", "mail.example.com",
            "--ip", "203.0.113.7", "--ipv6", "2001:db8::7", "--data-dir", directory + "/data", "--config", config,
        ]
        var result = try await PetrelProcess.run(arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let password = try #require(
            result.standardOutput.split(separator: "\n").first { $0.contains("password (shown only now): ") }?
                .components(separatedBy: ": ").last
        )
        #expect(password.count == 20)
        #expect(result.standardOutput.contains("example.com  MX  10 mail.example.com"))
        #expect(result.standardOutput.contains("petrel._domainkey.example.org  TXT  v=DKIM1; k=rsa; p="))

        // The file loads, with production ports, and is private.
        let configuration = try ConfigurationLoader.load(path: config, hostname: "unused")
        #expect(configuration.hostname == "mail.example.com")
        #expect(configuration.domains == ["example.com", "example.org"])
        #expect(configuration.publicAddresses.map(\.description) == ["203.0.113.7", "2001:db8::7"])
        #expect(configuration.listen.smtp.map(\.description) == ["0.0.0.0:25", "[::]:25"])
        #expect(configuration.listen.submission.map(\.port) == [587, 587])
        #expect(configuration.listen.submissions.map(\.port) == [465, 465])
        #expect(configuration.postmaster?.description == "postmaster@example.com")
        let mode = try FileManager.default.attributesOfItem(atPath: config)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The postmaster can log in with the printed password; keys and certificate exist.
        let accounts = try AccountStore(path: configuration.files.accounts)
        let credentials = try await accounts.passwordCredentials(
            for: AccountAddress(validating: "postmaster@example.com")
        )
        #expect(credentials.map { PasswordHasher.verify(String(password), against: $0.cryptHash) } == true)
        for domain in ["example.com", "example.org"] {
            #expect(FileManager.default.fileExists(atPath: directory + "/data/dkim/\(domain)/petrel.pem"))
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/data/tls/self-signed-certificate.pem"))
        let key = try String(contentsOfFile: directory + "/data/dkim/example.com/petrel.pem", encoding: .utf8)

        // Nothing is overwritten without --force; with it, keys stay and the password changes.
        result = try await PetrelProcess.run(arguments)
        #expect(result.status != 0)
        #expect(result.standardError.contains("petrel.toml exists; use --force to replace it"))
        result = try await PetrelProcess.run(arguments + ["--force"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(try String(contentsOfFile: directory + "/data/dkim/example.com/petrel.pem", encoding: .utf8) == key)
        #expect(!result.standardOutput.contains(password))

        // petrel dns reads what init wrote.
        result = try await PetrelProcess.run(["dns", "--config", config, "--format", "json"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("\"name\" : \"7.113.0.203.in-addr.arpa\""))
        #expect(result.standardError.isEmpty, "every domain has a key, addresses are set")
    }

    @Test func badArgumentsAreExplained() async throws {
        var result = try await PetrelProcess.run(["init", "--domain", "example.com", "--hostname", "mail.example.com"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("give this host's public address"))
        result = try await PetrelProcess.run([
            "init", "--domain", "example.com", "--hostname", "mail", "--ip", "203.0.113.7", "--config",
            "/nonexistent/x",
        ])
        #expect(result.status != 0)
        #expect(result.standardError.contains("not a fully qualified host name"))
        result = try await PetrelProcess.run([
            "init", "--domain", "example.com", "--hostname", "mail.example.com", "--ip", "2001:db8::1",
        ])
        #expect(result.standardError.contains("--ip '2001:db8::1' is not an IPv4 address"))
    }
}
