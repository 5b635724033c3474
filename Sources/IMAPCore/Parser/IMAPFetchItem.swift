/// What FETCH asks for (RFC 9051 §6.4.5; BINARY, RFC 3516).
public enum IMAPFetchItem: Hashable, Sendable {
    case envelope
    case flags
    case internalDate
    case rfc822Size
    case uid
    case bodyStructure
    /// `BODY` alone: BODYSTRUCTURE without extension data.
    case body
    case rfc822
    case rfc822Header
    case rfc822Text
    /// `BODY[section]<partial>`; `peek` (`BODY.PEEK`) leaves `\Seen` alone.
    case bodySection(IMAPSection, partial: IMAPPartial?, peek: Bool)
    /// `BINARY[part]<partial>`: the part with its transfer encoding undone.
    case binary(part: [UInt32], partial: IMAPPartial?, peek: Bool)
    case binarySize(part: [UInt32])
    /// CONDSTORE (RFC 7162 §3.1.4.1).
    case modSeq
    /// OBJECTID (RFC 8474 §5).
    case emailID
    case threadID
    /// PREVIEW (RFC 8970); `lazy`: only if it costs nothing now.
    case preview(lazy: Bool)

    /// `ALL`, `FAST` and `FULL`.
    public static let all: [IMAPFetchItem] = [.flags, .internalDate, .rfc822Size, .envelope]
    public static let fast: [IMAPFetchItem] = [.flags, .internalDate, .rfc822Size]
    public static let full: [IMAPFetchItem] = [.flags, .internalDate, .rfc822Size, .envelope, .body]
}

/// `section`: a part (`1.2`, empty for the whole message) and what of it.
public struct IMAPSection: Hashable, Sendable {
    public enum Text: Hashable, Sendable {
        case header
        case headerFields([String])
        case headerFieldsNot([String])
        case text
        /// The part's own MIME header (only after a part number).
        case mime
    }

    public var part: [UInt32]
    public var text: Text?

    public init(part: [UInt32] = [], text: Text? = nil) {
        self.part = part
        self.text = text
    }
}

/// `<offset.length>`.
public struct IMAPPartial: Hashable, Sendable {
    public var offset: UInt64
    public var length: UInt64

    public init(offset: UInt64, length: UInt64) {
        self.offset = offset
        self.length = length
    }
}
