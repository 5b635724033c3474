/// A display name for an address field (RFC 5322 §3.4 `phrase`) made from text a person typed
/// (`petrel sendmail -F`): left as it is when it is words of `atext`, a quoted string when it is
/// other printable ASCII, RFC 2047 encoded-words when it is not ASCII.
///
/// Text with a line break or another control character is refused, not cleaned: no name has one,
/// and a CR LF would end the From field and start a field of the sender's choosing.
public enum DisplayName {
    /// Longest name accepted, in octets: a name, not a paragraph, and well inside a line.
    public static let maximumLength = 256

    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        case controlCharacter
        case tooLong

        public var description: String {
            switch self {
            case .controlCharacter: return "a name is one line of text, without control characters"
            case .tooLong: return "a name has at most \(DisplayName.maximumLength) octets"
            }
        }
    }

    /// The phrase to put before `<address>`; "" for an empty name.
    public static func encode(_ name: String) throws(Failure) -> String {
        guard name.utf8.count <= Self.maximumLength else { throw .tooLong }
        guard !name.unicodeScalars.contains(where: Self.isControl) else { throw .controlCharacter }
        let trimmed = name.trimmingWhitespace()
        if trimmed.isEmpty { return "" }
        if trimmed.unicodeScalars.allSatisfy({ $0.isASCII }) {
            if trimmed.unicodeScalars.allSatisfy({ $0 == " " || Self.isAtext($0) }) { return trimmed }
            var quoted = "\""
            for scalar in trimmed.unicodeScalars {
                if scalar == "\"" || scalar == "\\" { quoted += "\\" }
                quoted.unicodeScalars.append(scalar)
            }
            return quoted + "\""
        }
        return Self.encodedWords(trimmed)
    }

    /// RFC 2047 §4.1 "B" encoded-words of UTF-8, each at most 75 characters (§2), split between
    /// whole characters (§5: an encoded-word must hold whole characters), folded onto lines of
    /// their own. (A character here is a code point, as in RFC 2047.)
    static func encodedWords(_ text: String) -> String {
        // "=?UTF-8?B?" + base64 + "?=" within 75: 63 base64 characters, 45 octets, a multiple of 3.
        let capacity = 45
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in text.unicodeScalars {
            let octets = Array(String(scalar).utf8)
            if chunk.count + octets.count > capacity, !chunk.isEmpty {
                words.append("=?UTF-8?B?" + Base64.encode(chunk) + "?=")
                chunk = []
            }
            chunk += octets
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + Base64.encode(chunk) + "?=") }
        return words.joined(separator: "\r\n ")
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}"
    }

    /// RFC 5322 §3.2.3 atext.
    static func isAtext(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(scalar)
    }
}
