import Foundation
import PetrelTestSupport
import SMTPCore
import SMTPServer
import ServerTestSupport
import Testing

/// Every probe of the conformance corpus that applies (its required EHLO keywords are advertised)
/// against a live server on a real socket. `must` and `should` probes have to pass; a `may` probe
/// that fails is reported but allowed.
@Suite(.serialized) struct ProbeTests {
    static let file: Probe.File = {
        let url = Bundle.module.url(forResource: "Fixtures/smtp/probes", withExtension: "yml")!
        return try! Probe.load(from: url)
    }()

    /// Probes whose requirement a correctly configured server cannot meet in a test run.
    static let notRunHere: [String: String] = [
        // Waits 4 minutes against the default 5-minute command timeout; the default is checked
        // by ConfigurationTests.defaultsFollowRFC5321Timeouts instead.
        "timeout-not-before-5min": "takes 4 minutes"
    ]

    /// Every probe in the file was read, counted from its text rather than from a number written
    /// here: adding a probe to the corpus is editing the corpus only.
    @Test func everyProbeIsRead() throws {
        let url = Bundle.module.url(forResource: "Fixtures/smtp/probes", withExtension: "yml")!
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        let ids = lines.filter { $0.hasPrefix("- id:") }.count
        let musts = lines.filter { $0.trimmingCharacters(in: .whitespaces) == "level: must" }.count
        #expect(ids > 100, "the corpus has over a hundred probes")
        #expect(Self.file.probes.count == ids)
        #expect(Self.file.probes.filter { $0.level == "must" }.count == musts)
    }

    @Test func protocolProbes() async throws {
        let server = try await TestServer.start { configuration in
            configuration.limits.connectionsPerIP = 10_000
            configuration.limits.connections = 10_000
        }
        let probes = Self.file.probes.filter { !$0.slow }
        let results = try await Self.run(probes, on: server, variables: Self.file.variables)
        try await server.stop()
        Self.report(results)
    }

    /// The STARTTLS and AUTH probes again, against the submission listener, where AUTH is offered.
    @Test func submissionProbes() async throws {
        let server = try await TestServer.start { configuration in
            configuration.limits.connectionsPerIP = 10_000
        }
        // These two send MAIL without AUTH, which a submission listener refuses (530); they pass
        // on the smtp listener above.
        let needsNoAuthentication = ["auth-in-transaction", "starttls-mail-after-tls-works"]
        let probes = Self.file.probes.filter {
            ["starttls", "auth"].contains($0.category) && !needsNoAuthentication.contains($0.id)
        }
        let results = try await Self.run(probes, on: server, kind: .submission, variables: Self.file.variables)
        try await server.stop()
        #expect(!results.contains { if case .skipped = $0.1 { return true } else { return false } })
        Self.report(results)
    }

    /// The timeout probes, against a server whose timeouts are 3 seconds.
    @Test func timeoutProbes() async throws {
        let server = try await TestServer.start { configuration in
            configuration.timeouts.command = 3
            configuration.timeouts.data = 3
        }
        var variables = Self.file.variables
        variables["IDLE_MAX"] = "10"
        let probes = Self.file.probes.filter { $0.slow && Self.notRunHere[$0.id] == nil }
        #expect(!probes.isEmpty)
        let results = try await Self.run(probes, on: server, variables: variables)
        try await server.stop()
        Self.report(results)
    }

    static func run(
        _ probes: [Probe],
        on server: TestServer,
        kind: ListenerKind = .smtp,
        variables: [String: String]
    ) async throws -> [(Probe, ProbeRun.Verdict)] {
        let client = try await server.connect(kind)
        try await client.expect(220)
        try await client.send("EHLO probe-runner.example")
        let advertised = try await client.expect(250).lines.dropFirst().map { $0.split(separator: " ")[0].uppercased() }
        await client.close()

        let nonce = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        return await withTaskGroup(of: (Probe, ProbeRun.Verdict).self) { group in
            var results: [(Probe, ProbeRun.Verdict)] = []
            var pending = probes[...]
            func startNext(_ group: inout TaskGroup<(Probe, ProbeRun.Verdict)>) {
                guard let probe = pending.popFirst() else { return }
                let missing = probe.requires.filter { !advertised.contains($0) }
                group.addTask {
                    if !missing.isEmpty {
                        return (probe, .skipped("not advertised: \(missing.joined(separator: ","))"))
                    }
                    var run = ProbeRun(probe: probe, variables: variables, server: server, kind: kind, nonce: nonce)
                    return (probe, await run.run())
                }
            }
            // A few at a time: probes with pauses overlap, and the machine is small.
            for _ in 0..<8 { startNext(&group) }
            for await result in group {
                results.append(result)
                startNext(&group)
            }
            return results
        }
    }

    static func report(_ results: [(Probe, ProbeRun.Verdict)]) {
        for (probe, verdict) in results.sorted(by: { $0.0.id < $1.0.id }) {
            guard case .failed(let why) = verdict else { continue }
            if probe.level == "may" {
                print("probe \(probe.id) (may) failed: \(why)")
            } else {
                Issue.record("probe \(probe.id) (\(probe.level), \(probe.category)): \(why)")
            }
        }
        let passed = results.filter { $0.1 == .passed }.count
        let skipped = results.filter { if case .skipped = $0.1 { return true } else { return false } }
        print(
            "probes: \(passed) passed, \(skipped.count) skipped (\(Set(skipped.map(\.0.category)).sorted().joined(separator: ", "))), \(results.count - passed - skipped.count) failed"
        )
    }
}
