import Foundation
import Testing

/// docs/architecture.md's target table names the package's targets, no more and no fewer.
@Suite struct ArchitectureDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func theTargetTableMatchesThePackage() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        // The targets of every build: those the fuzzing block adds exist only with PETREL_FUZZ.
        let declared = manifest.components(separatedBy: "if Context.environment[\"PETREL_FUZZ\"]")[0]
        var targets: Set<String> = []
        let pattern = /\.(?:target|executableTarget|systemLibrary)\(\s*name: "([^"]+)"/
        for match in declared.matches(of: pattern) { targets.insert(String(match.1)) }
        let document = try String(
            contentsOf: Self.root.appendingPathComponent("docs/architecture.md"),
            encoding: .utf8
        )
        // The rows of the table headed `| target | job | depends on |`, up to the blank line after it.
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        let header = try #require(lines.firstIndex { $0.hasPrefix("| target | job | depends on |") })
        let rows = lines[header...].prefix { !$0.isEmpty }.filter { $0.hasPrefix("| `") }
        let documented = Set(rows.map { String($0.split(separator: "`")[1]) })
        #expect(targets.count > 15, "\(targets.sorted())")
        #expect(
            targets.subtracting(documented).isEmpty,
            "not in the table: \(targets.subtracting(documented).sorted())"
        )
        #expect(documented.subtracting(targets).isEmpty, "no such target: \(documented.subtracting(targets).sorted())")
    }
}
