/// One header field exactly as it came (RFC 5322 §2.2): DKIM hashes these bytes, so nothing is
/// normalised here.
public struct HeaderField: Hashable, Sendable {
    /// The field name as written (compare with `hasName`, which ignores ASCII case).
    public var name: String
    /// The whole field: name, colon, value, folding, and the final CRLF.
    public var raw: [UInt8]

    public init(name: String, raw: [UInt8]) {
        self.name = name
        self.raw = raw
    }

    /// Everything after the colon, without the final line end, folding kept.
    public var rawValue: ArraySlice<UInt8> {
        guard let colon = self.raw.firstIndex(of: 0x3A) else { return [] }
        var end = self.raw.endIndex
        if end > colon + 1, self.raw[end - 1] == 0x0A { end -= 1 }
        if end > colon + 1, self.raw[end - 1] == 0x0D { end -= 1 }
        return self.raw[(colon + 1)..<end]
    }

    /// The value unfolded (line ends removed) and trimmed, as text for reading; not for hashing.
    public var value: String {
        let unfolded = self.rawValue.filter { $0 != 0x0D && $0 != 0x0A }
        return String(decoding: unfolded, as: UTF8.self).trimmingWhitespace()
    }

    public func hasName(_ other: String) -> Bool {
        self.name.utf8.count == other.utf8.count
            && zip(self.name.utf8, other.utf8).allSatisfy { asciiLowercased($0) == asciiLowercased($1) }
    }
}

/// The header section of a message: its fields in order, top first.
public struct HeaderSection: Hashable, Sendable, Codable {
    public var fields: [HeaderField]

    public init(fields: [HeaderField]) {
        self.fields = fields
    }

    /// Splits the octets before the empty line into fields. A line that starts with a space or
    /// tab continues the field before it; a line without a colon (malformed) is kept as a field
    /// with an empty name, so that nothing is lost and nothing matches it.
    public init(parsing bytes: some Collection<UInt8>) {
        // One pass over contiguous octets: the generic element-at-a-time walk this replaced cost
        // a third of a header-field SEARCH.
        self.fields =
            bytes.withContiguousStorageIfAvailable(Self.fields(in:))
            ?? Array(bytes).withUnsafeBufferPointer(Self.fields(in:))
    }

    private static func fields(in bytes: UnsafeBufferPointer<UInt8>) -> [HeaderField] {
        var fields: [HeaderField] = []
        func add(_ range: Range<Int>) {
            let raw = Array(bytes[range])
            let colon = raw.firstIndex(of: 0x3A)
            var end = colon ?? 0
            // RFC 5322 field names have no white space; obsolete syntax allows it before the colon.
            while end > 0 && (raw[end - 1] == 0x20 || raw[end - 1] == 0x09) { end -= 1 }
            let name = raw[..<end]
            let valid = !name.isEmpty && name.allSatisfy { (0x21...0x7E).contains($0) && $0 != 0x3A }
            fields.append(HeaderField(name: valid ? String(decoding: name, as: UTF8.self) : "", raw: raw))
        }
        var fieldStart: Int?
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            if lineEnd < bytes.count { lineEnd += 1 }  // the LF ends the line
            // A line starting with a space or tab continues the field before it; any other starts one.
            let first = bytes[lineStart]
            if !((first == 0x20 || first == 0x09) && fieldStart != nil) {
                if let start = fieldStart { add(start..<lineStart) }
                fieldStart = lineStart
            }
            lineStart = lineEnd
        }
        if let start = fieldStart { add(start..<bytes.count) }
        return fields
    }

    public func fields(named name: String) -> [HeaderField] {
        self.fields.filter { $0.hasName(name) }
    }

    /// The section as octets, the fields one after the other.
    public var bytes: [UInt8] { self.fields.flatMap(\.raw) }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and line ends.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let start = self.firstIndex(where: { !isSpace($0) }), let end = self.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(self[start...end])
    }
}

/// A field is stored (in the IMAP index's cached structure) as its name and its raw octets in
/// base64: they need not be UTF-8, and a list of numbers would be four times the size.
extension HeaderField: Codable {
    public init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        let name = try container.decode(String.self)
        let text = try container.decode(String.self)
        guard let raw = Base64.decode(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not base64")
        }
        self.init(name: name, raw: raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        try container.encode(self.name)
        try container.encode(Base64.encode(self.raw))
    }
}
