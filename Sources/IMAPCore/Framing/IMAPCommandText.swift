import NIOCore

/// One command as the framer found it: its text, cut where literals were announced, and the
/// literals themselves, in order. The parser reads it without knowing about framing: a literal is
/// one more token where the grammar allows a string.
public struct IMAPCommandText: Hashable, Sendable {
    public enum Part: Hashable, Sendable {
        /// Command text: a line, or the part of a line before a literal's announcement (which is
        /// left out) or after a literal. Never contains CRLF; may contain a bare CR or LF, which
        /// the parser refuses.
        case text(ByteBuffer)
        /// A literal's octets; `binary` for a literal8 (`~{n}`, RFC 3516).
        case literal(ByteBuffer, binary: Bool)
        /// A literal the session took as a stream (`literalData` events), of this size.
        case streamedLiteral(size: UInt64, binary: Bool)
    }

    public var parts: [Part]

    public init(_ parts: [Part]) {
        self.parts = parts
    }

    /// Octets held in memory.
    public var size: Int {
        self.parts.reduce(0) { total, part in
            switch part {
            case .text(let bytes), .literal(let bytes, _): return total + bytes.readableBytes
            case .streamedLiteral: return total
            }
        }
    }
}

/// What a line ending in `{n}`, `{n+}`, `~{n}` or `~{n+}` announced (RFC 9051 §4.3, RFC 7888,
/// RFC 3516).
public struct IMAPLiteralAnnouncement: Hashable, Sendable {
    /// The command up to the announcement: enough for its tag and name.
    public var command: IMAPCommandText
    public var size: UInt64
    /// `{n}`: the client waits for a `+` continuation before it sends the octets. `{n+}`: it
    /// sends them at once (LITERAL+), so a refused one must still be read.
    public var synchronizing: Bool
    /// `~{n}`: a literal8, which may contain NUL (BINARY, RFC 3516).
    public var binary: Bool

    public init(command: IMAPCommandText, size: UInt64, synchronizing: Bool, binary: Bool) {
        self.command = command
        self.size = size
        self.synchronizing = synchronizing
        self.binary = binary
    }
}

extension IMAPCommandText {
    /// The tag the command starts with, when it has one a response can carry (for a refusal
    /// before the command is whole: a literal too large, a command too long).
    public var tag: String? {
        guard case .text(let first) = self.parts.first else { return nil }
        return Self.tag(of: first)
    }

    /// Whether the command is APPEND (its literal is a message, which may stream).
    public var isAppend: Bool {
        guard case .text(let first) = self.parts.first else { return false }
        let words = first.readableBytesView.split(separator: 0x20, maxSplits: 2)
        guard words.count >= 2 else { return false }
        return words[1].map(IMAPReader.upper) == Array("APPEND".utf8)
    }

    /// Whether a line read during IDLE is `DONE` (any case; RFC 2177).
    public static func isIdleDone(_ line: ByteBuffer) -> Bool {
        line.readableBytesView.map(IMAPReader.upper) == Array("DONE".utf8)
    }

    /// The tag at the start of these octets: ASTRING-CHARs but `+` (RFC 9051 §9), up to a space.
    public static func tag(of start: ByteBuffer) -> String? {
        let bytes = Array(start.readableBytesView.prefix { $0 != 0x20 })
        guard !bytes.isEmpty, bytes.count <= 64,
            bytes.allSatisfy({ IMAPReader.isAStringChar($0) && $0 != UInt8(ascii: "+") })
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
