import Foundation

/// An SMTP dialogue written down as the client and the server speak it, one `.dialog` file in
/// `Tests/Dialogs` each (as chasquid keeps its dialog tests): a protocol regression is one new
/// file, played by the session tests in memory and by the server tests against a live server.
///
/// The format, line by line:
/// - `# text`: a comment; the first one says what the dialogue shows.
/// - `C: text`: the client sends `text` and CRLF (`C:` alone: an empty line). Consecutive `C:`
///   lines go out in one write (pipelined).
/// - `S: text`: the next line the server sends is exactly `text` (`250-PIPELINING`); a `text`
///   ending in ` ...` matches any line that starts with what comes before (`250 2.0.0 ...`).
/// - `S* code`: the next whole reply, however many lines, has this code (an EHLO reply, whose
///   extensions differ between listeners).
/// - `{host}` in a server line stands for the server's host name.
/// Before the first `C:` line come the greeting's lines.
public struct Dialog: Sendable, CustomStringConvertible {
    public enum Step: Sendable, Equatable {
        /// Lines the client sends in one write.
        case send([String])
        /// The next server line, exactly.
        case line(String)
        /// The next server line starts with this.
        case linePrefix(String)
        /// The next whole reply has this code.
        case reply(Int)
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public let name: String
    /// The first comment.
    public let summary: String
    public let steps: [Step]

    public var description: String { self.name }

    public init(name: String, text: String) throws {
        self.name = name
        var summary: String?
        var steps: [Step] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if line.hasPrefix("#") {
                if summary == nil { summary = line.dropFirst().trimmingCharacters(in: .whitespaces) }
            } else if line == "C:" || line.hasPrefix("C: ") {
                let sent = String(line.dropFirst(3))
                if case .send(let earlier) = steps.last {
                    steps[steps.count - 1] = .send(earlier + [sent])
                } else {
                    steps.append(.send([sent]))
                }
            } else if line.hasPrefix("S: ") {
                let expected = String(line.dropFirst(3))
                steps.append(expected.hasSuffix(" ...") ? .linePrefix(String(expected.dropLast(3))) : .line(expected))
            } else if line.hasPrefix("S* "), let code = Int(line.dropFirst(3)), (200...599).contains(code) {
                steps.append(.reply(code))
            } else {
                throw ParseError(description: "\(name):\(number + 1): expected #, C:, S: or S* code, not '\(line)'")
            }
        }
        guard let summary else { throw ParseError(description: "\(name): the first line should say what it shows") }
        self.summary = summary
        self.steps = steps
    }

    /// The directory of the dialogues, next to the tests.
    public static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/Dialogs")
    }

    /// Every `.dialog` file, by name.
    public static func all() throws -> [Dialog] {
        let names = try FileManager.default.contentsOfDirectory(atPath: self.directory.path)
            .filter { $0.hasSuffix(".dialog") }.sorted()
        return try names.map { name in
            try Dialog(
                name: String(name.dropLast(".dialog".count)),
                text: String(contentsOf: self.directory.appendingPathComponent(name), encoding: .utf8)
            )
        }
    }

    /// Plays the dialogue: `send` writes client lines (each with CRLF), `nextReply` returns the
    /// server's next reply as the lines it wrote (`250-PIPELINING`, `250 SIZE 1000`), or nil when
    /// there is none (closed, or nothing came). Returns the first mismatch, or nil.
    public func play(
        host: String,
        send: ([String]) async throws -> Void,
        nextReply: () async throws -> [String]?
    ) async throws -> String? {
        var pending: [String] = []
        for (index, step) in self.steps.enumerated() {
            let at = "\(self.name), step \(index + 1)"
            switch step {
            case .send(let lines):
                guard pending.isEmpty else { return "\(at): the server said more than the dialogue: \(pending)" }
                try await send(lines)
            case .reply(let code):
                guard pending.isEmpty else { return "\(at): expected a new \(code) reply, not the rest of \(pending)" }
                guard let reply = try await nextReply() else { return "\(at): expected a \(code) reply, got none" }
                guard reply.first?.hasPrefix(String(code)) == true else {
                    return "\(at): expected \(code), got \(reply)"
                }
            case .line(let expected), .linePrefix(let expected):
                if pending.isEmpty {
                    guard let reply = try await nextReply() else { return "\(at): expected '\(expected)', got none" }
                    pending = reply
                }
                let line = pending.removeFirst()
                let wanted = expected.replacingOccurrences(of: "{host}", with: host)
                let matches = if case .line = step { line == wanted } else { line.hasPrefix(wanted) }
                if !matches {
                    return "\(at): expected '\(wanted)\(step == .line(expected) ? "" : "...")', got '\(line)'"
                }
            }
        }
        return pending.isEmpty ? nil : "\(self.name): the server said more than the dialogue: \(pending)"
    }
}
