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
