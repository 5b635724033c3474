/// The addresses in an address-list header field such as From (RFC 5322 §3.4): display names,
/// quoted strings, comments and groups are understood and dropped, leaving each addr-spec.
public enum AddressList {
    /// Each addr-spec (`local@domain`) in the order written; nil when the value cannot be read
    /// (an unterminated quote, comment or angle bracket, or an element that is no address).
    public static func addresses(in value: String) -> [String]? {
        var addresses: [String] = []
        var element = ""  // the current element, comments and quoting removed
        var angle: String?  // inside <...>
        var lastAngle: String?
        var quoted = false
        var escaped = false
        var commentDepth = 0
        func finishElement() -> Bool {
            defer {
                element = ""
                lastAngle = nil
            }
            let spec = (lastAngle ?? element).trimmingWhitespace()
            if spec.isEmpty { return lastAngle == nil }  // an empty element (",,") is skipped
            guard let at = spec.lastIndex(of: "@"), at != spec.startIndex, spec.index(after: at) != spec.endIndex else {
                return false
            }
            addresses.append(spec.filter { $0 != " " && $0 != "\t" && $0 != "\r" && $0 != "\n" })
            return true
        }
        for character in value {
            if escaped {
                escaped = false
                guard commentDepth == 0 else { continue }
                if angle != nil { angle!.append(character) } else { element.append(character) }
                continue
            }
            if quoted {
                switch character {
                case "\\": escaped = true
                case "\"": quoted = false
                default: break
                }
                // Quoted text outside <> is a display name or a quoted local part; keep it in the
                // element so that "a b"@example.com reads as one address.
                if angle != nil { angle!.append(character) } else { element.append(character) }
                continue
            }
            if commentDepth > 0 {
                switch character {
                case "\\": escaped = true
                case "(": commentDepth += 1
                case ")": commentDepth -= 1
                default: break
                }
                continue
            }
            switch character {
            case "(":
                commentDepth = 1
            case "\"":
                quoted = true
                if angle != nil { angle!.append(character) } else { element.append(character) }
            case "<":
                guard angle == nil else { return nil }
                angle = ""
            case ">":
                guard let inside = angle else { return nil }
                lastAngle = inside
                angle = nil
            case ":" where angle == nil:
                element = ""  // a group's display name
            case ",", ";":
                guard angle == nil else { return nil }
                guard finishElement() else { return nil }
            default:
                if angle != nil { angle!.append(character) } else { element.append(character) }
            }
        }
        guard !quoted, commentDepth == 0, angle == nil, finishElement() else { return nil }
        return addresses
    }

    /// The domain of an addr-spec, lower-cased and in ASCII (A-labels); nil for an address
    /// literal or a domain that is not a host name.
    public static func domain(of address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        var domain = String(address[address.index(after: at)...])
        if domain.hasSuffix(".") { domain.removeLast() }
        guard !domain.isEmpty, !domain.hasPrefix("["), let ascii = IDNA.toASCII(domain),
            ascii.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ !$0.isEmpty })
        else { return nil }
        return ascii
    }
}
