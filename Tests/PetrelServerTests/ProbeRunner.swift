import Foundation
import PetrelTestSupport
import SMTPCore
import SMTPServer
import ServerTestSupport
import Yams

/// The probe file format of `Fixtures/smtp/probes.yml` (its header documents it), and a runner
/// that plays one probe against a live server over a real socket.
struct Probe: Sendable {
    let id: String
    let category: String
    let level: String
    let requires: [String]
    let slow: Bool
    let steps: [Step]
    let outcome: Outcome?

    indirect enum Step: Sendable {
        case send(String)
        case raw(String)
        case rawBytewise(String, delay: Double)
        case expect(Pattern, orEnd: Pattern?, ehloLacks: [String])
        case startTLS(orEnd: Pattern?)
        case wait(Double)
        case waitForClose(String)
        case reconnect
        case repeatSteps(Int, [Step])
    }

    enum Pattern: Sendable {
        case alternatives([String])
        case ifEhlo(keyword: String, then: [String], else: [String])
    }

    struct Outcome: Sendable {
        var delivered: ClosedRange<Int>?
        var smuggled: Int?
        var bodyContains: String?
        var bodyLacks: String?
    }

    struct File: Sendable {
        let variables: [String: String]
        let probes: [Probe]
    }

    static func load(from url: URL) throws -> File {
        let text = try String(contentsOf: url, encoding: .utf8)
        guard let root = try Yams.load(yaml: text) as? [String: Any] else { throw ProbeError("not a mapping") }
        let variables = (root["variables"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
        let probes = try (root["probes"] as? [[String: Any]] ?? []).map(Probe.init(yaml:))
        return File(variables: variables, probes: probes)
    }

    init(yaml: [String: Any]) throws {
        self.id = yaml["id"] as? String ?? "?"
        self.category = yaml["category"] as? String ?? "?"
        self.level = yaml["level"] as? String ?? "must"
        self.requires = yaml["requires"] as? [String] ?? []
        self.slow = yaml["slow"] as? Bool ?? false
        self.steps = try Probe.steps(yaml["steps"] as? [[String: Any]] ?? [])
        if let outcome = yaml["outcome"] as? [String: Any] {
            var parsed = Outcome()
            if let delivered = outcome["delivered"] {
                let text = "\(delivered)"
                let parts = text.components(separatedBy: "..").compactMap { Int($0) }
                parsed.delivered = parts.count == 2 ? parts[0]...parts[1] : parts[0]...parts[0]
            }
            parsed.smuggled = outcome["smuggled"] as? Int
            parsed.bodyContains = outcome["body_contains"] as? String
            parsed.bodyLacks = outcome["body_lacks"] as? String
            self.outcome = parsed
        } else {
            self.outcome = nil
        }
    }

    static func steps(_ list: [[String: Any]]) throws -> [Step] {
        try list.map { step in
            if let text = step["send"] as? String { return .send(text) }
            if let text = step["raw"] as? String { return .raw(text) }
            if let text = step["raw_bytewise"] as? String {
                return .rawBytewise(text, delay: (step["delay"] as? Double) ?? 0)
            }
            if let expect = step["expect"] {
                var lacks: [String] = []
                if let single = step["ehlo_lacks"] as? String { lacks = [single] }
                if let list = step["ehlo_lacks"] as? [String] { lacks = list }
                return .expect(try pattern(expect), orEnd: try step["or_end"].map(pattern), ehloLacks: lacks)
            }
            if step["starttls"] != nil { return .startTLS(orEnd: try step["or_end"].map(pattern)) }
            if let seconds = step["wait"] { return .wait(Double("\(seconds)") ?? 0) }
            if let seconds = step["wait_for_close"] { return .waitForClose("\(seconds)") }
            if step["reconnect"] != nil { return .reconnect }
            if let count = step["repeat"] as? Int {
                return .repeatSteps(count, try steps(step["steps"] as? [[String: Any]] ?? []))
            }
            throw ProbeError("unknown step \(step)")
        }
    }

    static func pattern(_ value: Any) throws -> Pattern {
        if let map = value as? [String: Any] {
            return .ifEhlo(
                keyword: map["if_ehlo"] as? String ?? "",
                then: "\(map["then"] ?? "")".components(separatedBy: "|"),
                else: "\(map["else"] ?? "")".components(separatedBy: "|")
            )
        }
        return .alternatives("\(value)".components(separatedBy: "|"))
    }
}

struct ProbeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Expands `{NAME}`, `{repeat:COUNT:TEXT}`, `{len:TEXT}` and `{{ }}` as the file header says.
struct ProbeTemplate {
    let variables: [String: String]

    func expand(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars)[...]
        return String(String.UnicodeScalarView(self.expand(&scalars, untilBrace: false)))
    }

    private func expand(_ input: inout ArraySlice<Unicode.Scalar>, untilBrace: Bool) -> [Unicode.Scalar] {
        var output: [Unicode.Scalar] = []
        while let scalar = input.first {
            if scalar == "}" {
                if input.dropFirst().first == "}" && !untilBrace {
                    output.append("}")
                    input = input.dropFirst(2)
                    continue
                }
                if untilBrace { return output }
            }
            if scalar == "{" {
                if input.dropFirst().first == "{" {
                    output.append("{")
                    input = input.dropFirst(2)
                    continue
                }
                input = input.dropFirst()
                // The directive name runs to ":" or "}".
                var name = ""
                while let next = input.first, next != ":", next != "}" {
                    name.unicodeScalars.append(next)
                    input = input.dropFirst()
                }
                if input.first == "}" {
                    input = input.dropFirst()
                    output += self.expand(self.variables[name] ?? "{\(name)}").unicodeScalars
                    continue
                }
                input = input.dropFirst()  // ":"
                if name == "repeat" {
                    var count = ""
                    while let next = input.first, next != ":" {
                        count.unicodeScalars.append(next)
                        input = input.dropFirst()
                    }
                    input = input.dropFirst()
                    let body = self.expand(&input, untilBrace: true)
                    input = input.dropFirst()
                    for _ in 0..<(Int(self.expand(count)) ?? 0) { output += body }
                } else if name == "len" {
                    let body = self.expand(&input, untilBrace: true)
                    input = input.dropFirst()
                    output += String(body.count).unicodeScalars
                }
                continue
            }
            output.append(scalar)
            input = input.dropFirst()
        }
        return output
    }
}

/// Plays one probe on its own connection(s).
struct ProbeRun {
    let probe: Probe
    let template: ProbeTemplate
    let server: TestServer
    let kind: ListenerKind
    let nonce: String
    var client: SMTPTestClient?
    var lastEhlo: [String] = []
    var lastSentEhlo = false
    var log: [String] = []

    init(probe: Probe, variables: [String: String], server: TestServer, kind: ListenerKind, nonce: String) {
        var variables = variables
        variables["ID"] = probe.id
        variables["NONCE"] = nonce
        self.probe = probe
        self.template = ProbeTemplate(variables: variables)
        self.server = server
        self.kind = kind
        self.nonce = nonce
    }

    enum Verdict: Equatable {
        case passed
        case skipped(String)
        case failed(String)
    }

    mutating func run() async -> Verdict {
        do {
            self.client = try await self.server.connect(self.kind)
            let ended = try await self.run(self.probe.steps, counter: 0)
            _ = ended
            await self.client?.close()
            return self.checkOutcome()
        } catch let error as ProbeError {
            await self.client?.close()
            return .failed("\(error) — transcript: \(self.log.suffix(12).joined(separator: " | "))")
        } catch {
            await self.client?.close()
            return .failed("\(error)")
        }
    }

    /// Returns true when the probe ended early (an allowed `or_end`).
    private mutating func run(_ steps: [Probe.Step], counter: Int) async throws -> Bool {
        var variables = self.template.variables
        variables["N"] = String(counter)
        let template = ProbeTemplate(variables: variables)
        for step in steps {
            guard let client = self.client else { throw ProbeError("no connection") }
            switch step {
            case .send(let text):
                let line = template.expand(text)
                self.lastSentEhlo = line.uppercased().hasPrefix("EHLO")
                self.log.append("C: \(line.prefix(60))")
                do {
                    try await client.sendRaw(Array(line.utf8) + [13, 10])
                } catch {
                    self.log.append("(send failed: connection closed)")
                }
            case .raw(let text):
                let bytes = template.expand(text).unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
                self.lastSentEhlo = false
                self.log.append("C: raw \(bytes.count) octets")
                do {
                    try await client.sendRaw(bytes)
                } catch {
                    self.log.append("(send failed: connection closed)")
                }
            case .rawBytewise(let text, let delay):
                for scalar in template.expand(text).unicodeScalars {
                    try? await client.sendRaw([UInt8(truncatingIfNeeded: scalar.value)])
                    try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                }
            case .expect(let pattern, let orEnd, let lacks):
                let alternatives = self.alternatives(pattern)
                let waitsForSilence =
                    alternatives.contains("timeout") || (orEnd.map(self.alternatives) ?? []).contains("timeout")
                let result = await client.read(timeout: waitsForSilence ? .seconds(2) : .seconds(15))
                self.log.append("S: \(result)")
                if let reply = result.reply, self.lastSentEhlo, reply.code == 250 { self.lastEhlo = reply.lines }
                if let orEnd, Self.matches(result, self.alternatives(orEnd)), !Self.matches(result, alternatives) {
                    return true
                }
                guard Self.matches(result, alternatives) else {
                    throw ProbeError("expected \(alternatives.joined(separator: "|")), got \(result)")
                }
                for keyword in lacks
                where result.reply?.lines.contains(where: { $0.uppercased().hasPrefix(keyword) }) == true {
                    throw ProbeError("EHLO reply advertises \(keyword)")
                }
            case .startTLS(let orEnd):
                let established = await client.startTLS()
                self.log.append(established ? "TLS established" : "TLS failed")
                if !established {
                    if let orEnd, self.alternatives(orEnd).contains(where: { $0 == "tls_fail" || $0 == "close" }) {
                        return true
                    }
                    throw ProbeError("the TLS handshake failed")
                }
            case .wait(let seconds):
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            case .waitForClose(let text):
                // A reply before the close (421, RFC 5321 3.8) is fine; what counts is the close.
                let seconds = Double(template.expand(text)) ?? 0
                let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
                var result = SMTPTestReadResult.timeout
                repeat {
                    result = await client.read(timeout: deadline - ContinuousClock.now)
                    self.log.append("S: \(result)")
                } while result.reply != nil
                guard case .closed = result else {
                    throw ProbeError("expected the server to close within \(seconds) s")
                }
            case .reconnect:
                await client.close()
                self.client = try await self.server.connect(self.kind)
            case .repeatSteps(let count, let inner):
                for index in 1...max(count, 1) where count > 0 {
                    if try await self.run(inner, counter: index) { return true }
                }
            }
        }
        return false
    }

    private func alternatives(_ pattern: Probe.Pattern) -> [String] {
        switch pattern {
        case .alternatives(let list):
            return list
        case .ifEhlo(let keyword, let then, let otherwise):
            return self.lastEhlo.contains { $0.uppercased().hasPrefix(keyword) } ? then : otherwise
        }
    }

    static func matches(_ result: SMTPTestReadResult, _ alternatives: [String]) -> Bool {
        alternatives.contains { pattern in
            switch (pattern, result) {
            case ("close", .closed), ("timeout", .timeout): return true
            case ("!2xx", .reply(let reply)): return reply.code / 100 != 2
            case ("!2xx", .closed): return true
            case (_, .reply(let reply)):
                if pattern.count == 3, pattern.hasSuffix("xx") { return String(reply.code / 100) == pattern.prefix(1) }
                return Int(pattern) == reply.code
            default: return false
            }
        }
    }

    private func checkOutcome() -> Verdict {
        guard let outcome = self.probe.outcome else { return .passed }
        let messages = self.server.allMessages()
        let probeID = "X-Probe-Id: \(self.probe.id)-\(self.nonce)"
        let smuggledID = "X-Smuggled-Id: \(self.probe.id)-\(self.nonce)"
        func header(_ message: String) -> Substring {
            message.range(of: "\n\n").map { message[..<$0.lowerBound] } ?? Substring(message)
        }
        let delivered = messages.filter { header($0).contains(probeID) }
        let smuggled = messages.filter { header($0).contains(smuggledID) }
        if let expected = outcome.delivered, !expected.contains(delivered.count) {
            return .failed("delivered \(delivered.count) messages, expected \(expected)")
        }
        if let expected = outcome.smuggled, smuggled.count != expected {
            return .failed("\(smuggled.count) smuggled messages delivered")
        }
        if let text = outcome.bodyContains, !delivered.contains(where: { $0.contains(text) }) {
            return .failed("no delivered message contains \(text.debugDescription)")
        }
        if let text = outcome.bodyLacks, delivered.contains(where: { $0.contains(text) }) {
            return .failed("a delivered message contains \(text.debugDescription)")
        }
        return .passed
    }
}
