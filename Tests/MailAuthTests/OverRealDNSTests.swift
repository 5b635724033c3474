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
/// Knot on loopback, which serves their zone data as a root zone. (The SPF suite goes over DNS in
/// Scripts/interop_auth.py, against serve_zone.py, which can leave queries unanswered as the
/// suite's TIMEOUT entries need; Knot cannot, so the one DMARC case with a timeout is left out.)
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
                    lines.append("\(name). " + KnotServer.txt(SPFSuiteTests.strings(value).joined()))
                }
            }
        }
        return (lines.joined(separator: "\n"), timeouts)
    }

    static func client(_ knot: KnotServer) -> DNSClient {
        DNSClient(configuration: .init(servers: [knot.address], timeout: .seconds(3).stretched, attempts: 1))
    }

    @Test func dkimVectors() async throws {
        let (records, _) = try Self.zoneLines(DKIMVectorTests.fixtures.appendingPathComponent("zone.yml"))
        let knot = try KnotServer(extraZones: [".": records])
        defer { knot.stop() }
        let verifier = DKIMVerifier(resolver: Self.client(knot))
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
        let knot = try KnotServer(extraZones: [".": records])
        defer { knot.stop() }
        let verifier = DMARCVerifier(resolver: Self.client(knot))
        var run = 0
        for test in DMARCCaseTests.cases {
            let domains = test.from.compactMap { AddressList.addresses(in: $0)?.compactMap(AddressList.domain(of:)) }
                .flatMap { $0 }
            guard !domains.contains(where: { timeouts.contains("_dmarc." + $0) }) else { continue }
            let verdict = await verifier.evaluate(
                fromFields: test.from,
                identifiers: .init(spf: (test.spfDomain, test.spfResult), dkim: test.dkim)
            )
            let expected = DMARCCaseTests.rfc9989[test.id].map { [$0.dmarc] } ?? test.dmarc
            #expect(expected.contains(verdict.result.rawValue), "\(test.id): \(verdict.result): \(verdict.reason)")
            #expect(verdict.policy?.rawValue == test.policy, "\(test.id)")
            run += 1
        }
        #expect(run == DMARCCaseTests.cases.count - 1)
    }
}
