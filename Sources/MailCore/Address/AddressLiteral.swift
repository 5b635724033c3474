/// An address literal in square brackets: RFC 5321 §4.1.3.
///
/// `[192.0.2.1]`, `[IPv6:2001:db8::1]`, or a general literal `[tag:content]` for address
/// families registered later. Values are validated, so `[300.1.1.1]` and `[IPv6:zz::1]` fail.
public enum AddressLiteral: Hashable, Sendable, CustomStringConvertible {
    case ipv4([UInt8])
    /// Sixteen octets.
    case ipv6([UInt8])
    case general(tag: String, content: String)

    /// Parses the text between the brackets.
    public init?(bracketContent text: some StringProtocol) {
        let text = String(text)
        if let octets = AddressLiteral.parseIPv4(Substring(text)) {
            self = .ipv4(octets)
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let tag = text[..<colon]
        let content = text[text.index(after: colon)...]
        if tag.lowercased() == "ipv6" {
            guard let octets = AddressLiteral.parseIPv6(content) else { return nil }
            self = .ipv6(octets)
            return
        }
        // General-address-literal: Standardized-tag ":" 1*dcontent; the tag is an Ldh-str
        // that IANA would register. dcontent = %d33-90 / %d94-126.
        guard !tag.isEmpty, !content.isEmpty,
            tag.utf8.allSatisfy({ isLetterOrDigit($0) || $0 == 0x2D }),
            tag.utf8.last != 0x2D,
            content.utf8.allSatisfy({ (33...90).contains($0) || (94...126).contains($0) })
        else { return nil }
        self = .general(tag: String(tag), content: String(content))
    }

    /// The literal as written in SMTP, brackets included.
    public var description: String {
        switch self {
        case .ipv4(let octets):
            return "[" + octets.map(String.init).joined(separator: ".") + "]"
        case .ipv6(let octets):
            return "[IPv6:" + AddressLiteral.formatIPv6(octets) + "]"
        case .general(let tag, let content):
            return "[\(tag):\(content)]"
        }
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy(isDigit),
                let value = Int(part), value <= 255
            else { return nil }
            octets.append(UInt8(value))
        }
        return octets
    }

    /// RFC 5321 IPv6-addr: full, compressed ("::") and IPv4-embedded forms.
    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard !text.isEmpty else { return nil }
        var tail = text
        var embeddedIPv4: [UInt8] = []
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(text[text.index(after: lastColon)...]) else { return nil }
            embeddedIPv4 = v4
            // Keep the colon when it belongs to a "::" right before the IPv4 part.
            let before = text[..<lastColon]
            tail = before.hasSuffix(":") ? text[...lastColon] : before
        }
        let halves = splitOnDoubleColon(tail)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.utf8.count), let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        let available = 8 - embeddedIPv4.count / 2
        var words: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0]), let rest = groups(halves[1]) else { return nil }
            // "::" stands for at least one zero group.
            guard head.count + rest.count < available else { return nil }
            words = head + Array(repeating: 0, count: available - head.count - rest.count) + rest
        } else {
            guard let all = groups(halves[0]), all.count == available else { return nil }
            words = all
        }
        var octets: [UInt8] = []
        for word in words {
            octets.append(UInt8(word >> 8))
            octets.append(UInt8(word & 0xFF))
        }
        return octets + embeddedIPv4
    }

    private static func splitOnDoubleColon(_ text: Substring) -> [Substring] {
        var parts: [Substring] = []
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(after: index)
            if text[index] == ":", next < text.endIndex, text[next] == ":" {
                parts.append(text[start..<index])
                start = text.index(after: next)
                index = start
            } else {
                index = next
            }
        }
        parts.append(text[start...])
        return parts
    }

    /// RFC 5952 text form: lower case, longest zero run compressed.
    static func formatIPv6(_ octets: [UInt8]) -> String {
        let words = stride(from: 0, to: 16, by: 2).map { UInt16(octets[$0]) << 8 | UInt16(octets[$0 + 1]) }
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            if words[index] == 0 {
                var end = index
                while end < 8, words[end] == 0 { end += 1 }
                if end - index > bestLength, end - index >= 2 {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            words[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

/// ASCII classes for the parsers of MailCore and MailAuth.
@inline(__always) public func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
@inline(__always) public func isLetter(_ byte: UInt8) -> Bool {
    (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
}
@inline(__always) public func isLetterOrDigit(_ byte: UInt8) -> Bool { isLetter(byte) || isDigit(byte) }
