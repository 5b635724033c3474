import Foundation
import Testing

@testable import PetrelConfiguration

/// docs/configuration.md and the loader name the same keys and the same defaults: the reference
/// cannot drift.
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
            [imap]
            [quota]
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

    /// Each key of the reference whose default is written as a TOML value (a number, a boolean,
    /// a quoted string, an array), with that value: rows naming several keys give one value each.
    static func documentedDefaults() throws -> [(key: String, value: String)] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/configuration.md")
        var defaults: [(key: String, value: String)] = []
        for line in try String(contentsOf: path, encoding: .utf8).split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard cells.count > 4 else { continue }
            func quoted(_ cell: String) -> [String] {
                cell.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                    .filter { $0.offset % 2 == 1 }.map { String($0.element) }
            }
            let keys = quoted(cells[1])
            let values = quoted(cells[3])
            guard keys.count == values.count else { continue }
            for (key, value) in zip(keys, values)
            where value.wholeMatch(of: /-?[0-9]+|true|false|".*"|\[.*\]/) != nil {
                defaults.append((key, value))
            }
        }
        return defaults
    }

    /// A file that sets every documented default explicitly loads as no file at all does.
    @Test func theReferenceDefaultsAreTheLoaders() throws {
        let defaults = try Self.documentedDefaults()
        #expect(defaults.count > 35, "\(defaults.map(\.key))")
        var tables: [String: [String]] = [:]
        for (key, value) in defaults {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            let table = parts.count == 2 ? parts[0] : ""
            tables[table, default: []].append("\(parts.last!) = \(value)")
        }
        var text = (tables.removeValue(forKey: "") ?? []).joined(separator: "\n") + "\n"
        for (table, lines) in tables.sorted(by: { $0.key < $1.key }) {
            text += "[\(table)]\n" + lines.joined(separator: "\n") + "\n"
        }
        func load(_ text: String) throws -> Configuration {
            try ConfigurationLoader.parse(text, source: "test.toml", baseDirectory: "/", hostname: "mx.example.test")
        }
        let explicit = try load(text)
        let embedded = try load("")
        #expect(explicit == embedded, "\(text)")
        // Each value alone too, so that a failure names its key.
        for (key, value) in defaults {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            let file = parts.count == 2 ? "[\(parts[0])]\n\(parts[1]) = \(value)\n" : "\(key) = \(value)\n"
            guard !key.hasPrefix("listen.") else { continue }  // one listener kind alone replaces all
            #expect(try load(file) == embedded, "\(key) = \(value)")
        }
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
