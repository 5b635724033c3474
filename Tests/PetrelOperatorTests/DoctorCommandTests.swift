import Foundation
import PetrelSystem
import PetrelTestSupport
import ServerTestSupport
import Testing

/// `petrel doctor` against the test DNS server serving the zone `petrel dns` printed: all ok
/// (exit 0); then with each kind of record missing or wrong, each named (exit 1). (Against Knot
/// DNS itself: Scripts/interop/interop.sh.)
@Suite struct DoctorCommandTests {
    @Test func doctorFindsEveryBrokenRecord() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/petrel.toml"
        // Fixed ports (doctor compares them with the records), below Linux's ephemeral range
        // (32768-60999), where the outgoing connections of tests running alongside cannot hold one.
        let base = Int.random(in: 10_000...32_000)
        try """
        hostname = "mail.example.com"
        data_dir = "data"
        domains = ["example.com"]
        addresses = ["203.0.113.7"]
        [listen]
        smtp = ["127.0.0.1:\(base)"]
        submission = ["127.0.0.1:\(base + 1)"]
        submissions = ["127.0.0.1:\(base + 2)"]
        imap = ["127.0.0.1:\(base + 3)"]
        imaps = ["127.0.0.1:\(base + 4)"]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        var result = try await PetrelProcess.run(["dkim", "keygen", "example.com", "--config", config])
        #expect(result.status == 0, "\(result.standardError)")
        result = try await PetrelProcess.run(["dns", "--format", "zone", "--config", config])
        // The PTR is published by the address's owner: here, in the same test zone.
        let zone = result.standardOutput.replacingOccurrences(of: "; (set by the address's owner) ", with: "")
        let server = PetrelProcess(arguments: ["serve", "--config", config], directory: directory)
        try server.start()
        // Stopped and waited for whatever happens: its pipes must not close under libdispatch.
        do {
            _ = try await server.listeningPort()
            try await Self.check(zone: zone, config: config, port: base, dataDirectory: directory + "/data")
        } catch {
            server.signal(SIGTERM)
            _ = await server.exit()
            throw error
        }
        server.signal(SIGTERM)
        #expect(await server.exit() == 0)
    }

    static func check(zone: String, config: String, port base: Int, dataDirectory: String) async throws {
        var result: PetrelProcess.Result

        func doctor(_ zone: String) async throws -> PetrelProcess.Result {
            let server = try TestDNSServer(extraZones: [".": zone])
            defer { server.stop() }
            return try await PetrelProcess.run(["doctor", "--config", config, "--dns", "127.0.0.1:\(server.port)"])
        }

        result = try await doctor(zone)
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.contains("ok      MX example.com"))
        #expect(result.standardOutput.contains("ok      PTR 7.113.0.203.in-addr.arpa"))
        #expect(result.standardOutput.contains("ok      SRV _submission._tcp.example.com"))
        #expect(result.standardOutput.contains("ok      listener smtp 127.0.0.1:\(base)"))
        #expect(result.standardOutput.contains("ok      listener imap 127.0.0.1:\(base + 3)"))
        #expect(result.standardOutput.contains("ok      listener imaps 127.0.0.1:\(base + 4)"))
        #expect(result.standardOutput.contains("ok      SRV _imaps._tcp.example.com"))
        #expect(result.standardOutput.hasSuffix(" ok, 0 missing, 0 wrong\n"))

        // Each line replaced (or removed) in turn, and what doctor must say about it.
        let other = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        let cases: [(String, String?, String)] = [
            ("_dmarc.example.com.", nil, "missing TXT _dmarc.example.com"),
            (
                "_dmarc.example.com.", "_dmarc.example.com. IN TXT \"v=DMARC1; p=bogus\"",
                "wrong   TXT _dmarc.example.com"
            ),
            (
                "petrel._domainkey.example.com.", "petrel._domainkey.example.com. IN TXT \"\(other)\"",
                "wrong   TXT petrel._domainkey.example.com"
            ),
            ("example.com.\tIN\tTXT", "example.com. IN TXT \"v=spf1 ip4:192.0.2.1 -all\"", "wrong   TXT example.com"),
            ("example.com.\tIN\tMX", "example.com. IN MX 10 other.example.net.", "wrong   MX example.com"),
            ("mail.example.com.\tIN\tA", "mail.example.com. IN A 198.51.100.9", "wrong   A mail.example.com"),
            ("7.113.0.203.in-addr.arpa.", nil, "missing PTR 7.113.0.203.in-addr.arpa"),
            ("_submissions._tcp.example.com.", nil, "missing SRV _submissions._tcp.example.com"),
            ("_imap._tcp.example.com.", nil, "missing SRV _imap._tcp.example.com"),
            ("_smtp._tls.example.com.", nil, "missing TXT _smtp._tls.example.com"),
            ("_mta-sts.example.com.", nil, "missing TXT _mta-sts.example.com"),
        ]
        for (prefix, replacement, expected) in cases {
            let broken = zone.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                line.hasPrefix(prefix) ? (replacement ?? "") : String(line)
            }.joined(separator: "\n")
            #expect(broken != zone, "the case \(prefix) changes the zone")
            let report = try await doctor(broken)
            #expect(report.status == 1, "\(prefix): \(report.standardOutput)")
            #expect(report.standardOutput.contains(expected), "\(expected)\n\(report.standardOutput)")
            let problems = report.standardOutput.split(separator: "\n").filter {
                $0.hasPrefix("missing ") || $0.hasPrefix("wrong ")
            }
            // A wrong A or MX record breaks more: SPF's a and mx, the PTR's forward confirmation.
            if !prefix.hasPrefix("mail.example.com.") && !prefix.hasPrefix("example.com.\tIN\tMX") {
                #expect(problems.count == 1, "\(expected): \(problems)")
            }
        }

        // A data directory open to other local users (made by hand, or restored from a backup).
        #expect(chmod(dataDirectory, 0o755) == 0)
        let report = try await doctor(zone)
        #expect(report.status == 1)
        #expect(
            report.standardOutput.contains(
                "wrong   permissions \(dataDirectory)\n        found:    mode 0755: open to other local users\n"
                    + "        expected: owner only: chmod 700 \(dataDirectory)"
            ),
            "\(report.standardOutput)"
        )
        #expect(report.standardOutput.contains("ok      permissions \(dataDirectory)/accounts.sqlite"))
        #expect(chmod(dataDirectory, 0o700) == 0)
    }
}
