import Foundation

/// An SMTP dialogue written down as the client and the server speak it, one `.dialog` file in
/// `Tests/Dialogs` each (as chasquid keeps its dialog tests): a protocol regression is one new
/// file, played by the session tests in memory and by the server tests against a live server.
///
/// The format, line by line:
/// - `# text`: a comment; the first one says what the dialogue shows.
/// - `C: text`: the client sends `text` and CRLF (`C:` alone: an empty line). Consecutive `C:`
///   and `R:` lines go out in one write (pipelined).
/// - `R: text`: the client sends `text` as it is, without CRLF, after reading `\r`, `\n`, `\0`,
///   `\t` and `\\` as the octets they name: message content no text line can carry (a BDAT
///   chunk with a bare LF).
/// - `S: text`: the next line the server sends is exactly `text` (`250-PIPELINING`); a `text`
///   ending in ` ...` matches any line that starts with what comes before (`250 2.0.0 ...`).
/// - `S* code`: the next whole reply, however many lines, has this code (an EHLO reply, whose
///   extensions differ between listeners).
/// - `{host}` in a server line stands for the server's host name.
/// Before the first `C:` line come the greeting's lines.
public struct Dialog: Sendable, CustomStringConvertible {
    public enum Step: Sendable, Equatable {
        /// Octets the client sends in one write.
        case send([UInt8])
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
            } else if line == "C:" || line.hasPrefix("C: ") || line.hasPrefix("R: ") {
                let text = String(line.dropFirst(3))
                let sent: [UInt8]
                if line.hasPrefix("R: ") {
                    guard let raw = Self.unescape(text) else {
                        throw ParseError(
                            description: "\(name):\(number + 1): an escape other than \\r \\n \\0 \\t \\\\"
                        )
                    }
                    sent = raw
                } else {
                    sent = Array(text.utf8) + [0x0D, 0x0A]
                }
                if case .send(let earlier) = steps.last {
                    steps[steps.count - 1] = .send(earlier + sent)
                } else {
                    steps.append(.send(sent))
                }
            } else if line.hasPrefix("S: ") {
                let expected = String(line.dropFirst(3))
                steps.append(expected.hasSuffix(" ...") ? .linePrefix(String(expected.dropLast(3))) : .line(expected))
            } else if line.hasPrefix("S* "), let code = Int(line.dropFirst(3)), (200...599).contains(code) {
                steps.append(.reply(code))
            } else {
                throw ParseError(description: "\(name):\(number + 1): expected #, C:, R:, S: or S* code, not '\(line)'")
            }
        }
        guard let summary else { throw ParseError(description: "\(name): the first line should say what it shows") }
        self.summary = summary
        self.steps = steps
    }

    /// `\r`, `\n`, `\0`, `\t` and `\\` as the octets they name; nil for any other escape.
    static func unescape(_ text: String) -> [UInt8]? {
        var octets: [UInt8] = []
        var escaped = false
        for byte in text.utf8 {
            if escaped {
                switch byte {
                case UInt8(ascii: "r"): octets.append(0x0D)
                case UInt8(ascii: "n"): octets.append(0x0A)
                case UInt8(ascii: "0"): octets.append(0x00)
                case UInt8(ascii: "t"): octets.append(0x09)
                case UInt8(ascii: "\\"): octets.append(byte)
                default: return nil
                }
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else {
                octets.append(byte)
            }
        }
        return escaped ? nil : octets
    }

    /// A directory of dialogues, next to the tests: `Tests/Dialogs` (SMTP) or `Tests/IMAPDialogs`.
    public static func directory(_ name: String = "Dialogs") -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/" + name)
    }

    /// Every `.dialog` file of a directory, by name.
    public static func all(in name: String = "Dialogs") throws -> [Dialog] {
        let directory = self.directory(name)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".dialog") }.sorted()
        return try names.map { file in
            try Dialog(
                name: String(file.dropLast(".dialog".count)),
                text: String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            )
        }
    }

    /// Plays the dialogue: `send` writes the client's octets, `nextReply` returns the
    /// server's next reply as the lines it wrote (`250-PIPELINING`, `250 SIZE 1000`), or nil when
    /// there is none (closed, or nothing came). Returns the first mismatch, or nil.
    public func play(
        host: String,
        send: ([UInt8]) async throws -> Void,
        nextReply: () async throws -> [String]?
    ) async throws -> String? {
        var pending: [String] = []
        for (index, step) in self.steps.enumerated() {
            let at = "\(self.name), step \(index + 1)"
            switch step {
            case .send(let octets):
                guard pending.isEmpty else { return "\(at): the server said more than the dialogue: \(pending)" }
                try await send(octets)
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
