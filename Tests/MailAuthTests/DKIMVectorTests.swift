import DNSCore
import Foundation
import MailAuth
import MailCore
import PetrelTestSupport
import Testing
import Yams

/// The 46 DKIM vectors of Fixtures/dkim (sources and licences in its README), each message
/// streamed through MessageScanner in small pieces and verified against the vectors' zone.
struct DKIMVectorTests {
    struct Vector: CustomTestStringConvertible, Sendable {
        var id: String
        var file: String
        /// RFC 6376 §6.1 terms per signature: pass, permfail, tempfail; "a|b" allows either.
        var expect: [String]
        /// Acceptable Authentication-Results values per signature.
        var results: [String]
        var testDescription: String { self.id }
    }

    static let fixtures = Bundle.module.url(forResource: "Fixtures/dkim", withExtension: nil)!

    static let vectors: [Vector] = {
        let text = try! String(contentsOf: Self.fixtures.appendingPathComponent("vectors.yml"), encoding: .utf8)
        let root = try! Yams.load(yaml: text) as! [String: Any]
        return (root["vectors"] as! [[String: Any]]).map { vector in
            Vector(
                id: vector["id"] as! String,
                file: vector["file"] as! String,
                expect: vector["expect"] as! [String],
                results: (vector["authentication_results"] as! [Any]).map { "\($0)" }
            )
        }
    }()

    static func zone() throws -> InMemoryZone {
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent("zone.yml"), encoding: .utf8)
        let root = try Yams.load(yaml: text) as! [String: Any]
        let zone = InMemoryZone()
        for (name, entries) in root["zonedata"] as! [String: Any] {
            for entry in entries as! [[String: Any]] {
                zone.addTXT(name, SPFSuiteTests.strings(entry["TXT"]!))
            }
        }
        return zone
    }

    /// What RFC 6376 §6.1 calls each RFC 8601 result.
    static func category(_ result: DKIMResult) -> String {
        switch result {
        case .pass: return "pass"
        case .temperror: return "tempfail"
        case .fail, .permerror, .policy, .neutral, .none: return "permfail"
        }
    }

    @Test(arguments: Self.vectors)
    func vector(_ vector: Vector) async throws {
        let message = try Data(contentsOf: Self.fixtures.appendingPathComponent(vector.file))
        var scanner = MessageScanner(now: 1_800_000_000)
        // Odd-sized pieces, so that line ends and the empty line fall across them.
        var offset = 0
        while offset < message.count {
            let end = min(offset + 7, message.count)
            scanner.append(message[offset..<end])
            offset = end
        }
        let verdicts = await DKIMVerifier(resolver: try Self.zone()).verify(scanner.finish())
        try #require(verdicts.count == vector.expect.count, "\(verdicts)")
        for (index, verdict) in verdicts.enumerated() {
            let allowed = vector.expect[index].split(separator: "|").map(String.init)
            #expect(
                allowed.contains(Self.category(verdict.result)),
                "signature \(index + 1): \(verdict.result): \(verdict.reason)"
            )
            #expect(
                vector.results.contains(verdict.result.rawValue),
                "signature \(index + 1): \(verdict.result): \(verdict.reason)"
            )
        }
    }

    /// l= is honoured, and said: appended text is no longer hidden behind a "pass".
    @Test func bodyLengthIsReported() async throws {
        let vector = try #require(Self.vectors.first { $0.id == "len-tag-appended" })
        var scanner = MessageScanner(now: 1_800_000_000)
        scanner.append(try Data(contentsOf: Self.fixtures.appendingPathComponent(vector.file)))
        let verdicts = await DKIMVerifier(resolver: try Self.zone()).verify(scanner.finish())
        let verdict = try #require(verdicts.first)
        #expect(verdict.result == .pass && verdict.bodyLength != nil)
        #expect(verdict.reason.contains("body octets are signed (l=)"), "\(verdict.reason)")
    }

    @Test func allVectorsAreThere() {
        #expect(Self.vectors.count == 46)
    }
}
