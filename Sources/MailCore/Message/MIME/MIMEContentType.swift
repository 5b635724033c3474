/// A `Content-Type` (RFC 2045 §5.1): type and subtype in lower case, and the parameters in the
/// order written, RFC 2231 continuations (`name*0`, `name*1`) joined and `name*` values
/// percent-decoded (their charset is taken as UTF-8, as mail readers do in practice).
public struct MIMEContentType: Hashable, Sendable, Codable {
    public var type: String
    public var subtype: String
    /// In the order written; names in lower case, each once.
    public var parameters: [MIMEParameter]

    public static let maximumParameters = 64

    public init(type: String, subtype: String, parameters: [MIMEParameter] = []) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
    }

    public static let textPlain = MIMEContentType(
        type: "text",
        subtype: "plain",
        parameters: [MIMEParameter("charset", "us-ascii")]
    )
    public static let messageRFC822 = MIMEContentType(type: "message", subtype: "rfc822")

    public var isMultipart: Bool { self.type == "multipart" }
    /// A message in a part: message/rfc822, or message/global (RFC 6532).
    public var isMessage: Bool { self.type == "message" && (self.subtype == "rfc822" || self.subtype == "global") }

    public func parameter(_ name: String) -> String? {
        let name = name.lowercased()
        return self.parameters.first { $0.name == name }?.value
    }

    /// nil when the value has no `type/subtype`.
    public init?(parsing value: String) {
        var reader = Reader(Array(value.utf8))
        reader.skipSpace()
        guard let type = reader.token(), reader.take(UInt8(ascii: "/")), let subtype = reader.token() else {
            return nil
        }
        self.type = type.lowercased()
        self.subtype = subtype.lowercased()
        self.parameters = Self.parameters(&reader)
    }

    /// A field of the shape `token *(";" parameter)` (Content-Disposition, RFC 2183): the token
    /// in lower case and the parameters; nil without the token.
    public static func parameterized(_ value: String) -> (token: String, parameters: [MIMEParameter])? {
        var reader = Reader(Array(value.utf8))
        reader.skipSpace()
        guard let token = reader.token() else { return nil }
        return (token.lowercased(), Self.parameters(&reader))
    }

    static func parameters(_ reader: inout Reader) -> [MIMEParameter] {
        var raw: [(name: String, value: String, extended: Bool)] = []
        while raw.count < Self.maximumParameters {
            reader.skipSpace()
            guard reader.take(UInt8(ascii: ";")) else { break }
            reader.skipSpace()
            guard let name = reader.token() else { break }
            reader.skipSpace()
            guard reader.take(UInt8(ascii: "=")) else { break }
            reader.skipSpace()
            guard let value = reader.quoted() ?? reader.token() else { continue }
            var lower = name.lowercased()
            let extended = lower.hasSuffix("*")
            if extended { lower.removeLast() }
            raw.append((lower, value, extended))
        }
        return Self.joined(raw)
    }

    /// RFC 2231: `name*0`, `name*1*`... joined in order; `*` values are `charset'lang'%xx`, and
    /// their octets are read in that charset (UTF-8, ASCII, ISO-8859-1, Windows-1252; others as
    /// UTF-8).
    static func joined(_ raw: [(name: String, value: String, extended: Bool)]) -> [MIMEParameter] {
        var result: [MIMEParameter] = []
        var sections: [String: [(Int, [UInt8])]] = [:]
        var charsets: [String: String] = [:]
        var order: [String] = []
        for (name, value, extended) in raw {
            var bytes = Array(value.utf8)
            if let star = name.firstIndex(of: "*"), let number = Int(name[name.index(after: star)...]), number < 1_000 {
                let base = String(name[..<star])
                if sections[base] == nil { order.append(base) }
                if extended {
                    if number == 0, let (charset, rest) = Self.splitCharset(bytes) {
                        charsets[base] = charset
                        bytes = rest
                    }
                    bytes = Self.percentDecoded(bytes)
                }
                sections[base, default: []].append((number, bytes))
            } else if !result.contains(where: { $0.name == name }) {
                var charset: String?
                if extended {
                    if let (found, rest) = Self.splitCharset(bytes) {
                        charset = found
                        bytes = rest
                    }
                    bytes = Self.percentDecoded(bytes)
                }
                result.append(MIMEParameter(name, Self.text(bytes, charset: charset)))
            }
        }
        for base in order where !result.contains(where: { $0.name == base }) {
            let bytes = sections[base, default: []].sorted { $0.0 < $1.0 }.flatMap(\.1)
            result.append(MIMEParameter(base, Self.text(bytes, charset: charsets[base])))
        }
        return result
    }

    /// `charset'language'rest`: the charset (lower case) and the rest.
    static func splitCharset(_ bytes: [UInt8]) -> (String, [UInt8])? {
        guard let quote = bytes.firstIndex(of: UInt8(ascii: "'")),
            let second = bytes[(quote + 1)...].firstIndex(of: UInt8(ascii: "'"))
        else { return nil }
        return (String(decoding: bytes[..<quote], as: UTF8.self).lowercased(), Array(bytes[(second + 1)...]))
    }

    static func text(_ bytes: [UInt8], charset: String?) -> String {
        charset.flatMap { EncodedWords.text(bytes, charset: $0) } ?? String(decoding: bytes, as: UTF8.self)
    }

    /// `%xx` as the octet; anything else as it is.
    static func percentDecoded(_ text: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = 0
        while index < text.count {
            if text[index] == UInt8(ascii: "%"), index + 2 < text.count,
                let high = TransferEncoding.hex(text[index + 1]), let low = TransferEncoding.hex(text[index + 2])
            {
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(text[index])
                index += 1
            }
        }
        return bytes
    }

    /// RFC 2045's tokens, quoted strings and comments, over the field's value.
    struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
        }

        /// Skips white space and (nested) comments.
        mutating func skipSpace() {
            var depth = 0
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                if depth > 0 {
                    if byte == UInt8(ascii: "\\") { self.index += 1 }
                    if byte == UInt8(ascii: "(") { depth += 1 }
                    if byte == UInt8(ascii: ")") { depth -= 1 }
                } else if byte == UInt8(ascii: "(") {
                    depth = 1
                } else if byte != 0x20, byte != 0x09, byte != 0x0D, byte != 0x0A {
                    return
                }
                self.index += 1
            }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
            self.index += 1
            return true
        }

        /// RFC 2045 `token`: printable ASCII but tspecials and space.
        mutating func token() -> String? {
            let start = self.index
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                guard byte > 0x20, byte < 0x7F, !Array("()<>@,;:\\\"/[]?=".utf8).contains(byte) else { break }
                self.index += 1
            }
            return self.index > start ? String(decoding: self.bytes[start..<self.index], as: UTF8.self) : nil
        }

        mutating func quoted() -> String? {
            guard self.take(UInt8(ascii: "\"")) else { return nil }
            var value: [UInt8] = []
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                self.index += 1
                if byte == UInt8(ascii: "\"") { return String(decoding: value, as: UTF8.self) }
                if byte == UInt8(ascii: "\\"), self.index < self.bytes.count {
                    value.append(self.bytes[self.index])
                    self.index += 1
                } else if byte != 0x0D, byte != 0x0A {
                    value.append(byte)
                }
            }
            return String(decoding: value, as: UTF8.self)
        }
    }
}

/// One `name=value` of a MIME header field.
public struct MIMEParameter: Hashable, Sendable, Codable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}
