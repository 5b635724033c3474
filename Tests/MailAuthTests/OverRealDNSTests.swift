import DNSClient
import DNSCore
import Foundation
import MailAuth
import MailCore
import NIOCore
import PetrelTestSupport
import Testing
import Yams

/// The DKIM vectors and the DMARC cases again, through Petrel's own resolver (`DNSClient`) asking
/// an authoritative server on loopback (`TestDNSServer`), which serves their zone data as a root
/// zone and leaves the names marked TIMEOUT unanswered. (The SPF suite goes over DNS in
/// Scripts/interop/interop_auth.py, against serve_zone.py.)
@Suite(.serialized) struct OverRealDNSTests {
    /// `zonedata` of a fixture as zone-file lines, and the names marked TIMEOUT.
    static func zoneLines(_ file: URL) throws -> (records: String, timeouts: Set<String>) {
        let root = try Yams.load(yaml: String(contentsOf: file, encoding: .utf8)) as! [String: Any]
        var lines: [String] = []
        var timeouts: Set<String> = []
        for (name, entries) in root["zonedata"] as! [String: Any] {
            let list = entries as? [Any] ?? []
            if list.isEmpty { lines.append("\(name). TXT \"\"") }  // exists, with nothing asked for
            for entry in list {
                if let marker = entry as? String, marker == "TIMEOUT" {
                    timeouts.insert(name)
                } else if let record = entry as? [String: Any], let value = record["TXT"] {
                    lines.append("\(name). " + TestDNSServer.txt(SPFSuiteTests.strings(value).joined()))
                }
            }
        }
        return (lines.joined(separator: "\n"), timeouts)
    }

    static func client(_ server: TestDNSServer) -> DNSClient {
        DNSClient(configuration: .init(servers: [server.address], timeout: .seconds(3).stretched, attempts: 1))
    }

    @Test func dkimVectors() async throws {
        let (records, _) = try Self.zoneLines(DKIMVectorTests.fixtures.appendingPathComponent("zone.yml"))
        let server = try TestDNSServer(extraZones: [".": records])
        defer { server.stop() }
        let verifier = DKIMVerifier(resolver: Self.client(server))
        for vector in DKIMVectorTests.vectors {
            var scanner = MessageScanner(now: 1_800_000_000)
            scanner.append(try Data(contentsOf: DKIMVectorTests.fixtures.appendingPathComponent(vector.file)))
            let verdicts = await verifier.verify(scanner.finish())
            #expect(verdicts.count == vector.expect.count, "\(vector.id)")
            for (verdict, expected) in zip(verdicts, vector.expect) {
                #expect(
                    expected.split(separator: "|").contains(Substring(DKIMVectorTests.category(verdict.result))),
                    "\(vector.id): \(verdict.result): \(verdict.reason)"
                )
            }
        }
    }

    @Test func dmarcCases() async throws {
        let (records, timeouts) = try Self.zoneLines(DMARCCaseTests.fixtures.appendingPathComponent("zone.yml"))
        let server = try TestDNSServer(extraZones: [".": records], silentNames: timeouts)
        defer { server.stop() }
        let verifier = DMARCVerifier(resolver: Self.client(server))
        var run = 0
        var timedOut = 0
        for test in DMARCCaseTests.cases {
            let domains = test.from.compactMap { AuthorFields.addresses(in: $0)?.compactMap(AddressList.domain(of:)) }
                .flatMap { $0 }
            if domains.contains(where: { timeouts.contains("_dmarc." + $0) }) { timedOut += 1 }
            let verdict = await verifier.evaluate(
                fromFields: test.from,
                identifiers: .init(spf: (test.spfDomain, test.spfResult), dkim: test.dkim)
            )
            let expected = DMARCCaseTests.rfc9989[test.id].map { [$0.dmarc] } ?? test.dmarc
            #expect(expected.contains(verdict.result.rawValue), "\(test.id): \(verdict.result): \(verdict.reason)")
            #expect(verdict.policy?.rawValue == test.policy, "\(test.id)")
            run += 1
        }
        // Every case, the one whose policy query times out (temperror) included.
        #expect(run == DMARCCaseTests.cases.count)
        #expect(timedOut == 1)
    }
}
