/// A message's MIME structure (RFC 2045, 2046): each part with where its header and body are
/// in the message, what its header fields say, and its own parts. Computed once when a message
/// is stored, so that IMAP's BODYSTRUCTURE, BODY[1.2] and BINARY[] cost no re-parse.
///
/// Bounded and total: any octets give a structure. Nesting deeper than `maximumDepth` or more
/// than `maximumParts` parts in all leave the rest as one leaf, a multipart without its boundary
/// is a leaf, a header without an end takes the whole part; nothing makes the parser slow (each
/// level scans its own body once).
public struct MIMEPart: Hashable, Sendable, Codable {
    /// Offsets in the message: the part's first octet, its body's first octet, and its end.
    public var start: Int
    public var bodyStart: Int
    public var end: Int
    /// The fields the structure and ENVELOPE use (Content-*, and those of an ENVELOPE), at most
    /// `maximumKeptFields`; the whole header stays in the message, for BODY[HEADER].
    public var header: HeaderSection
    public var contentType: MIMEContentType
    /// `Content-Transfer-Encoding`, lower case; `7bit` when absent.
    public var transferEncoding: String
    /// Lines in the body, a last one without its line end included (IMAP's body-fld-lines for
    /// text and message/rfc822 parts; a part's last line end belongs to the boundary after it).
    public var lines: Int
    /// A multipart's parts, or a message/rfc822 part's message (one part); empty for a leaf.
    public var parts: [MIMEPart]

    public var bodySize: Int { self.end - self.bodyStart }

    public static let maximumDepth = 32
    public static let maximumParts = 1_000
    /// A part whose header has not ended within this many octets has none: all of it is body
    /// (as `MessageScanner` caps a message's header for DKIM).
    public static let maximumHeaderSize = 262_144
    public static let maximumKeptFields = 100

    /// The fields kept in `header`.
    public static let keptFields: Set<String> = [
        "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id",
    ]

    public init(
        start: Int,
        bodyStart: Int,
        end: Int,
        header: HeaderSection,
        contentType: MIMEContentType,
        transferEncoding: String,
        lines: Int,
        parts: [MIMEPart]
    ) {
        self.start = start
        self.bodyStart = bodyStart
        self.end = end
        self.header = header
        self.contentType = contentType
        self.transferEncoding = transferEncoding
        self.lines = lines
        self.parts = parts
    }

    /// Reads the structure of a whole message.
    public init(message: [UInt8]) {
        var budget = Self.maximumParts
        self = Self.parse(message, start: 0, end: message.count, depth: 0, default: .textPlain, budget: &budget)
    }

    /// The part an IMAP section number names (`[2, 1]` is BODY[2.1]); nil when there is none.
    /// A message/rfc822 part's parts are its message's: `[2, 1]` inside one is its message's
    /// first part (RFC 9051 §6.4.5).
    public func part(_ path: [Int]) -> MIMEPart? {
        var part = self
        for (index, number) in path.enumerated() {
            // Into an attached message from the second number on: BODY[2] is the attached
            // message itself, BODY[2.1] its first part.
            if index > 0, part.contentType.isMessage, let message = part.parts.first { part = message }
            if part.contentType.isMultipart {
                guard number >= 1, number <= part.parts.count else { return nil }
                part = part.parts[number - 1]
            } else {
                // A part that is not multipart has one part: itself.
                guard number == 1 else { return nil }
            }
        }
        return part
    }

    static func parse(
        _ message: [UInt8],
        start: Int,
        end: Int,
        depth: Int,
        default defaultType: MIMEContentType,
        budget: inout Int
    ) -> MIMEPart {
        budget -= 1
        var (headerEnd, bodyStart) = Self.headerEnd(
            message,
            start: start,
            end: min(end, start + Self.maximumHeaderSize)
        )
        if headerEnd == bodyStart, bodyStart - start >= Self.maximumHeaderSize {
            (headerEnd, bodyStart) = (start, start)  // no end within the limit: no header at all
        } else if headerEnd == bodyStart {
            (headerEnd, bodyStart) = (end, end)  // a part that is all header
        }
        let kept = HeaderSection(parsing: message[start..<headerEnd]).fields.lazy.filter { field in
            let name = field.name.lowercased()
            return name.hasPrefix("content-") || Self.keptFields.contains(name)
        }
        let header = HeaderSection(fields: Array(kept.prefix(Self.maximumKeptFields)))
        let contentType =
            header.fields(named: "Content-Type").first.flatMap { MIMEContentType(parsing: $0.value) } ?? defaultType
        let encoding = header.fields(named: "Content-Transfer-Encoding").first.map { $0.value.lowercased() } ?? "7bit"
        var part = MIMEPart(
            start: start,
            bodyStart: bodyStart,
            end: end,
            header: header,
            contentType: contentType,
            transferEncoding: encoding.isEmpty ? "7bit" : encoding,
            lines: contentType.type == "text" || contentType.isMessage
                ? Self.lines(message, from: bodyStart, to: end) : 0,
            parts: []
        )
        guard depth < Self.maximumDepth, budget > 0 else { return part }
        if contentType.isMultipart, let boundary = contentType.parameter("boundary"), !boundary.isEmpty {
            let childDefault: MIMEContentType = contentType.subtype == "digest" ? .messageRFC822 : .textPlain
            for (childStart, childEnd) in Self.bodyParts(
                message,
                start: bodyStart,
                end: end,
                boundary: Array(boundary.utf8),
                limit: budget
            ) {
                guard budget > 0 else { break }
                part.parts.append(
                    Self.parse(
                        message,
                        start: childStart,
                        end: childEnd,
                        depth: depth + 1,
                        default: childDefault,
                        budget: &budget
                    )
                )
            }
        } else if contentType.isMessage, bodyStart < end {
            part.parts = [
                Self.parse(message, start: bodyStart, end: end, depth: depth + 1, default: .textPlain, budget: &budget)
            ]
        }
        return part
    }

    static func lines(_ message: [UInt8], from start: Int, to end: Int) -> Int {
        let feeds = message[start..<end].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        return end > start && message[end - 1] != 0x0A ? feeds + 1 : feeds
    }

    /// Where the header fields end (the empty line's start) and the body starts (after it);
    /// both `end` when there is no empty line.
    static func headerEnd(_ message: [UInt8], start: Int, end: Int) -> (Int, Int) {
        var index = start
        var lineStart = start
        while index < end {
            if message[index] == 0x0A {
                let line = index - lineStart
                if line == 0 || (line == 1 && message[lineStart] == 0x0D) { return (lineStart, index + 1) }
                lineStart = index + 1
            }
            index += 1
        }
        return (end, end)
    }

    /// The body parts of a multipart body: between lines `--boundary` and up to `--boundary--`
    /// (RFC 2046 §5.1.1). The line end before a boundary line belongs to the boundary.
    static func bodyParts(_ message: [UInt8], start: Int, end: Int, boundary: [UInt8], limit: Int) -> [(Int, Int)] {
        var parts: [(Int, Int)] = []
        var partStart: Int?
        var lineStart = start
        while lineStart < end {
            var lineEnd = lineStart
            while lineEnd < end, message[lineEnd] != 0x0A { lineEnd += 1 }
            let next = min(lineEnd + 1, end)
            if Self.isBoundary(message, from: lineStart, to: lineEnd, boundary: boundary) {
                // The part ends before the line end that precedes this boundary line.
                if let open = partStart {
                    var close = lineStart
                    if close > open, message[close - 1] == 0x0A { close -= 1 }
                    if close > open, message[close - 1] == 0x0D { close -= 1 }
                    parts.append((open, max(open, close)))
                    if parts.count >= limit { return parts }
                }
                let after = lineStart + 2 + boundary.count
                if after + 1 < lineEnd, message[after] == UInt8(ascii: "-"), message[after + 1] == UInt8(ascii: "-") {
                    return parts
                }
                partStart = next
            }
            lineStart = next
        }
        // No closing boundary: the last part runs to the end.
        if let open = partStart, open <= end { parts.append((open, end)) }
        return parts
    }

    /// `--boundary`, then `--` or nothing, then optional white space to the line end.
    static func isBoundary(_ message: [UInt8], from: Int, to: Int, boundary: [UInt8]) -> Bool {
        guard to - from >= 2 + boundary.count, message[from] == UInt8(ascii: "-"),
            message[from + 1] == UInt8(ascii: "-")
        else { return false }
        for (offset, byte) in boundary.enumerated() where message[from + 2 + offset] != byte { return false }
        var index = from + 2 + boundary.count
        if index + 1 < to, message[index] == UInt8(ascii: "-"), message[index + 1] == UInt8(ascii: "-") { index += 2 }
        while index < to {
            let byte = message[index]
            guard byte == 0x20 || byte == 0x09 || byte == 0x0D else { return false }
            index += 1
        }
        return true
    }
}
