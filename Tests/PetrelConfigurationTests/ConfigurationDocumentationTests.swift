import Foundation
import Testing

@testable import PetrelConfiguration

/// docs/configuration.md and the loader name the same keys: the reference cannot drift.
@Suite struct ConfigurationDocumentationTests {
    /// The keys of the reference table: every backquoted name in the first column of a row.
    static func documentedKeys() throws -> Set<String> {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/configuration.md")
        var keys: Set<String> = []
        for line in try String(contentsOf: path, encoding: .utf8).split(separator: "\n") where line.hasPrefix("| `") {
            let firstCell = line.dropFirst(2).prefix { $0 != "|" }
            for (index, part) in firstCell.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            where index % 2 == 1 {
                keys.insert(String(part))
            }
        }
        return keys
    }

    /// The keys the loader reads: a file with every table makes every table's reader ask for all
    /// of its keys.
    static func keysTheLoaderReads() throws -> Set<String> {
        let asked = TableReader.KeysAsked()
        _ = try ConfigurationLoader.parse(
            """
            [listen]
            smtp = ["127.0.0.1:25"]
            [tls]
            certificate = "certificate.pem"
            key = "key.pem"
            [limits]
            [timeouts]
            [auth]
            [inbound]
            [dns]
            [delivery]
            [relay]
            host = "smtp.example.test:587"
            [metrics]
            [log]
            """,
            source: "test.toml",
            baseDirectory: "/",
            hostname: "mx.example.test",
            keysAsked: asked
        )
        let all = Set(asked.keys)
        // A table's own name is asked for too; only the keys in it are settings.
        return all.filter { key in !all.contains { $0.hasPrefix(key + ".") } }
    }

    @Test func theReferenceNamesEveryKeyAndNoOther() throws {
        let documented = try Self.documentedKeys()
        let read = try Self.keysTheLoaderReads()
        #expect(read.count > 40, "\(read.sorted())")
        #expect(
            read.subtracting(documented).isEmpty,
            "read but not documented: \(read.subtracting(documented).sorted())"
        )
        #expect(
            documented.subtracting(read).isEmpty,
            "documented but not read: \(documented.subtracting(read).sorted())"
        )
    }
}
