import MailCore

/// A DKIM tag=value list (RFC 6376 §3.2), as in DKIM-Signature fields and key records (and, with
/// the same grammar, DMARC records). Tag names are case-sensitive; white space (FWS) around tags,
/// "=" and ";" is ignored; a tag given twice makes the whole list invalid.
struct TagList {
    struct Tag {
        var name: String
        /// The value with surrounding white space removed (inner FWS kept).
        var value: String
        /// Where the value is in the parsed octets (from the first to after the last non-space).
        var range: Range<Int>
    }

    var tags: [Tag]

    subscript(name: String) -> String? { self.tags.first { $0.name == name }?.value }

    enum Failure: Error, CustomStringConvertible {
        case duplicate(String)
        case malformed(String)

        var description: String {
            switch self {
            case .duplicate(let name): return "tag \(name)= appears twice"
            case .malformed(let text): return "malformed tag \"\(text)\""
            }
        }
    }

    init(parsing bytes: some Collection<UInt8>) throws(Failure) {
        let bytes = Array(bytes)
        self.tags = []
        var seen: Set<String> = []
        var start = 0
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: 0x3B) ?? bytes.count  // ";"
            let spec = start..<end
            start = end + 1
            let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
            guard let first = bytes[spec].firstIndex(where: { !isSpace($0) }) else {
                // An empty spec is allowed only as the trailing ";".
                if end == bytes.count { break }
                throw .malformed("")
            }
            guard let equals = bytes[first..<end].firstIndex(of: 0x3D) else {
                throw .malformed(String(decoding: bytes[spec], as: UTF8.self))
            }
            var nameEnd = equals
            while nameEnd > first, isSpace(bytes[nameEnd - 1]) { nameEnd -= 1 }
            let name = bytes[first..<nameEnd]
            guard let head = name.first, isLetter(head), name.allSatisfy({ isLetter($0) || isDigit($0) || $0 == 0x5F })
            else { throw .malformed(String(decoding: bytes[spec], as: UTF8.self)) }
            var valueStart = equals + 1
            while valueStart < end, isSpace(bytes[valueStart]) { valueStart += 1 }
            var valueEnd = end
            while valueEnd > valueStart, isSpace(bytes[valueEnd - 1]) { valueEnd -= 1 }
            let tagName = String(decoding: name, as: UTF8.self)
            guard seen.insert(tagName).inserted else { throw .duplicate(tagName) }
            self.tags.append(
                Tag(
                    name: tagName,
                    value: String(decoding: bytes[valueStart..<valueEnd], as: UTF8.self),
                    range: valueStart..<valueEnd
                )
            )
            if end == bytes.count { break }
        }
    }
}

extension String {
    /// The value with all white space (folding included) taken out: base64 in b=, bh=, p=.
    var withoutWhitespace: String {
        String(self.unicodeScalars.filter { $0 != " " && $0 != "\t" && $0 != "\r" && $0 != "\n" })
    }
}
