import Foundation
import Testing

/// docs/architecture.md's target table names the package's targets, no more and no fewer, and
/// each row's "depends on" column names exactly the targets of ours Package.swift gives it.
@Suite struct ArchitectureDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Each target of every build (those the fuzzing block adds exist only with PETREL_FUZZ;
    /// test targets are not in the table) with the targets of ours it depends on.
    static func declaredTargets() throws -> [String: Set<String>] {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let declared = manifest.components(separatedBy: "if Context.environment[\"PETREL_FUZZ\"]")[0]
        let pieces = declared.components(separatedBy: ".testTarget(")[0]
            .split(separator: /\.(?=target\(|executableTarget\(|systemLibrary\()/).dropFirst()
        var targets: [String: Set<String>] = [:]
        for piece in pieces {
            guard let name = piece.firstMatch(of: /^\w+\(\s*name: "([^"]+)"/)?.1 else { continue }
            // Our targets are named by a bare string; outside packages' products by .product(...).
            let withoutProducts = piece.replacing(/\.product\([^)]*\)/, with: "")
            let list = withoutProducts.firstMatch(of: /dependencies:\s*\[([^\]]*)\]/)?.1 ?? ""
            targets[String(name)] = Set(list.matches(of: /"([^"]+)"/).map { String($0.1) })
        }
        return targets
    }

    /// The rows of the table headed `| target | job | depends on |`: each target with the words of
    /// its last column, parenthesised remarks left out.
    static func documentedTargets() throws -> [String: Set<String>] {
        let document = try String(
            contentsOf: Self.root.appendingPathComponent("docs/architecture.md"),
            encoding: .utf8
        )
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        let header = try #require(lines.firstIndex { $0.hasPrefix("| target | job | depends on |") })
        let rows = lines[header...].prefix { !$0.isEmpty }.filter { $0.hasPrefix("| `") }
        var documented: [String: Set<String>] = [:]
        for row in rows {
            let name = String(row.split(separator: "`")[1])
            let dependsOn = row.dropLast(2).components(separatedBy: " | ").last ?? ""
            let words = dependsOn.replacing(/\([^)]*\)/, with: "").matches(of: /[A-Za-z]+/).map { String($0.0) }
            documented[name] = Set(words)
        }
        return documented
    }

    @Test func theTargetTableMatchesThePackage() throws {
        let targets = try Self.declaredTargets()
        let documented = try Self.documentedTargets()
        let declaredNames = Set(targets.keys)
        let documentedNames = Set(documented.keys)
        #expect(targets.count > 15, "\(targets.keys.sorted())")
        #expect(
            declaredNames.subtracting(documentedNames).isEmpty,
            "not in the table: \(declaredNames.subtracting(documentedNames).sorted())"
        )
        #expect(
            documentedNames.subtracting(declaredNames).isEmpty,
            "no such target: \(documentedNames.subtracting(declaredNames).sorted())"
        )
        #expect(targets["PetrelServer"]?.contains("Delivery") == true, "the manifest was not read")
        for (name, dependencies) in targets.sorted(by: { $0.key < $1.key }) {
            let named = (documented[name] ?? []).intersection(declaredNames)
            #expect(
                named == dependencies,
                "\(name): the table also names \(named.subtracting(dependencies).sorted()), Package.swift also has \(dependencies.subtracting(named).sorted())"
            )
        }
    }
}
