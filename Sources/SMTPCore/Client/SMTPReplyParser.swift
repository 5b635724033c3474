/// Reads a server's replies (RFC 5321 §4.2) from the bytes it sends: multi-line replies joined,
/// enhanced status codes (RFC 2034) taken off each line. The server is a stranger too: lines
/// and replies are bounded, and anything that is not a reply is an error, never a crash.
public struct SMTPReplyParser: Sendable {
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        case malformed(String)
        case lineTooLong
        case tooManyLines

        public var description: String {
            switch self {
            case .malformed(let line): return "not an SMTP reply: \"\(line.prefix(80))\""
            case .lineTooLong: return "a reply line over \(SMTPReplyParser.maximumLineLength) octets"
            case .tooManyLines: return "a reply of more than \(SMTPReplyParser.maximumLines) lines"
            }
        }
    }

    /// RFC 5321 §4.5.3.1.5 allows 512 octets; some servers send more.
    public static let maximumLineLength = 4096
    public static let maximumLines = 200

    private var line: [UInt8] = []
    private var pending: [(code: Int, text: String)] = []

    public init() {}

    /// Adds bytes; returns the replies they complete, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(Failure) -> [SMTPReply] {
        var replies: [SMTPReply] = []
        for byte in bytes {
            guard byte == 0x0A else {
                guard self.line.count < Self.maximumLineLength else { throw .lineTooLong }
                self.line.append(byte)
                continue
            }
            if self.line.last == 0x0D { self.line.removeLast() }
            let text = String(decoding: self.line, as: UTF8.self)
            self.line = []
            if let reply = try self.take(text) { replies.append(reply) }
        }
        return replies
    }

    /// No unfinished line or reply is waiting.
    public var isIdle: Bool { self.line.isEmpty && self.pending.isEmpty }

    private mutating func take(_ line: String) throws(Failure) -> SMTPReply? {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ (0x30...0x39).contains($0) }),
            let code = Int(String(decoding: bytes[0...2], as: UTF8.self)), (200...599).contains(code)
        else { throw .malformed(line) }
        let separator = bytes.count > 3 ? bytes[3] : 0x20
        guard separator == 0x20 || separator == 0x2D else { throw .malformed(line) }
        if let first = self.pending.first, first.code != code { throw .malformed(line) }
        let text = bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : ""
        self.pending.append((code, text))
        guard self.pending.count <= Self.maximumLines else { throw .tooManyLines }
        guard separator == 0x20 else { return nil }
        let lines = self.pending
        self.pending = []
        // An enhanced code counts when every line starts with the same one, of the reply's class.
        var enhanced: EnhancedStatusCode?
        var texts = lines.map(\.text)
        if let (parsed, _) = Self.enhancedCode(texts[0]), parsed.statusClass == UInt8(code / 100),
            texts.allSatisfy({ Self.enhancedCode($0)?.0 == parsed })
        {
            enhanced = parsed
            texts = texts.map { Self.enhancedCode($0)!.rest }
        }
        return SMTPReply(code, enhanced, texts)
    }

    /// "5.1.1 text" → (5.1.1, "text").
    static func enhancedCode(_ text: String) -> (EnhancedStatusCode, rest: String)? {
        let word = text.prefix { $0 != " " }
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let first = UInt8(parts[0]), (2...5).contains(first),
            parts[1].count <= 3, parts[2].count <= 3, let subject = UInt16(parts[1]), let detail = UInt16(parts[2])
        else { return nil }
        return (EnhancedStatusCode(first, subject, detail), String(text.dropFirst(word.count).drop { $0 == " " }))
    }
}

/// Turns message content into the octets of DATA (RFC 5321 §4.5.2): CRLF line ends only (a bare
/// CR or LF becomes a line end, so no receiver can be made to see a line end we did not mean),
/// a dot doubled at the start of a line, and the closing "." line. Streaming: constant memory.
public struct MessageDataEncoder: Sendable {
    private var atLineStart = true
    private var pendingCR = false

    public init() {}

    public mutating func encode(_ bytes: some Sequence<UInt8>, into output: inout [UInt8]) {
        for byte in bytes {
            switch byte {
            case 0x0D:
                if self.pendingCR { self.endLine(&output) }
                self.pendingCR = true
            case 0x0A:
                self.pendingCR = false
                self.endLine(&output)
            default:
                if self.pendingCR {
                    self.pendingCR = false
                    self.endLine(&output)
                }
                if self.atLineStart, byte == 0x2E { output.append(0x2E) }
                output.append(byte)
                self.atLineStart = false
            }
        }
    }

    /// Ends the last line if it is open, and the data.
    public mutating func finish(into output: inout [UInt8]) {
        if self.pendingCR {
            self.pendingCR = false
            self.endLine(&output)
        }
        if !self.atLineStart { self.endLine(&output) }
        output += [0x2E, 0x0D, 0x0A]
    }

    private mutating func endLine(_ output: inout [UInt8]) {
        output += [0x0D, 0x0A]
        self.atLineStart = true
    }
}
