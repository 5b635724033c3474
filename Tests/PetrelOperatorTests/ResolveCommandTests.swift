import Foundation
import PetrelTestSupport
import ServerTestSupport
import Testing

/// `petrel resolve`, as an operator runs it, against the test DNS server serving the fixture zones
/// on loopback.
@Suite(.serialized) struct ResolveCommandTests {
    func resolve(_ arguments: String...) async throws -> PetrelProcess.Result {
        try await PetrelProcess.run(["resolve"] + arguments)
    }

    @Test func printsAnswersLikeDig() async throws {
        let dns = try TestDNSServer()
        defer { dns.stop() }
        let server = "127.0.0.1:\(dns.port)"
        // The owner name keeps the case of the question, as the server echoes it (dig does the same).
        let expected: [(type: String, name: String, output: String)] = [
            (
                "MX", "example.test",
                "example.test.\t3600\tIN\tMX\t10 mx1.example.test.\nexample.test.\t3600\tIN\tMX\t20 mx2.example.test.\n"
            ),
            ("A", "mx1.example.test", "mx1.example.test.\t3600\tIN\tA\t192.0.2.1\n"),
            ("aaaa", "MX1.Example.Test.", "MX1.Example.Test.\t3600\tIN\tAAAA\t2001:db8::1\n"),
            ("TXT", "multi.example.test", "multi.example.test.\t3600\tIN\tTXT\t\"part one \" \"part two\"\n"),
            ("PTR", "192.0.2.1", "1.2.0.192.in-addr.arpa.\t3600\tIN\tPTR\tmx1.example.test.\n"),
            (
                "TLSA", "_25._tcp.mx1.example.test",
                "_25._tcp.mx1.example.test.\t3600\tIN\tTLSA\t3 1 1 " + String(repeating: "0123456789ABCDEF", count: 4)
                    + "\n"
            ),
            (
                "A", "alias.example.test",
                "alias.example.test.\t3600\tIN\tCNAME\talias2.example.test.\n"
                    + "alias2.example.test.\t3600\tIN\tCNAME\tmx1.example.test.\nmx1.example.test.\t3600\tIN\tA\t192.0.2.1\n"
            ),
        ]
        for (type, name, output) in expected {
            let result = try await self.resolve(type, name, "--server", server)
            #expect(result.status == 0, "\(type) \(name): \(result.standardError)")
            let records = type == "MX" ? "2 records" : "1 record"
            #expect(result.standardOutput == output + ";; status: NOERROR, \(records); AD: no\n")
        }

        // 2,000 octets of TXT: truncated over UDP, so fetched again over TCP.
        let big = try await self.resolve("TXT", "big.example.test", "--server", server)
        #expect(big.status == 0)
        let quoted = big.standardOutput.split(separator: "\t").last.map { $0.split(separator: "\n")[0] } ?? ""
        #expect(quoted.filter { $0 == "x" }.count == 2000, "\(big.standardOutput.prefix(200))")
        #expect(
            quoted.hasPrefix("\"") && quoted.filter({ $0 == "\"" }).count == 2 * 8,
            "8 strings of at most 255 octets"
        )
    }

    @Test func exitStatusSaysWhatHappened() async throws {
        let dns = try TestDNSServer()
        defer { dns.stop() }
        let server = "127.0.0.1:\(dns.port)"

        var result = try await self.resolve("A", "nope.example.test", "--server", server)
        #expect(result.status == 1)
        #expect(result.standardOutput == ";; status: NXDOMAIN; AD: no\n")
        result = try await self.resolve("AAAA", "mx2.example.test", "--server", server)
        #expect(result.status == 1)
        #expect(result.standardOutput == ";; status: NOERROR, no AAAA records; AD: no\n")
        result = try await self.resolve("A", "x.broken.test", "--server", server)
        #expect(result.status == 2)
        #expect(result.standardOutput == ";; status: SERVFAIL\n")
        result = try await self.resolve("A", "elsewhere.invalid", "--server", server)
        #expect(result.status == 2)
        #expect(result.standardOutput == ";; status: REFUSED\n")

        result = try await self.resolve("BOGUS", "example.test", "--server", server)
        #expect(result.status == 64)
        #expect(result.standardError.contains("unknown record type 'BOGUS'"))
        result = try await self.resolve("A", "a..b", "--server", server)
        #expect(result.status == 64)
        #expect(result.standardError.contains("'a..b' is not a domain name"))
        result = try await self.resolve("A", "example.test", "--server", "dns.example:53")
        #expect(result.status == 64)
        #expect(result.standardError.contains("--server takes an IP address and port"))
    }
}
