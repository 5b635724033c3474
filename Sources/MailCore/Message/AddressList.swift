/// The addresses in address header fields (RFC 5322 §3.4), read two ways: `recipients(in:)`
/// leniently, for the recipient fields (To, Cc, Bcc) that `petrel sendmail -t` sends to;
/// `mailboxes(in:)` strictly, for the author fields (From, Sender), which must read one way only
/// (`AuthorFields` is where they are read).
public enum AddressList {
    /// Each addr-spec (`local@domain`) of an address-list in the order written: display names,
    /// quoted strings, comments and groups are understood and dropped. Nil when the value cannot
    /// be read (an unterminated quote, comment or angle bracket, or an element that is no
    /// address).
    public static func recipients(in value: String) -> [String]? {
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

    /// Each addr-spec of a mailbox-list (RFC 5322 §3.4), the grammar of From and Sender, read
    /// strictly; nil for anything else. `recipients(in:)` is lenient, as a recipient list may be;
    /// an author field must read one way only, since a mail reader shows one address and DMARC,
    /// the submission check and the DKIM signer judge another if they differ:
    /// - a mailbox is an addr-spec, or a display name and one `<addr-spec>`, with nothing but
    ///   comments and white space after the `>`;
    /// - a display name has no unquoted `@` (`ceo@example.com <alice@example.com>`);
    /// - no group syntax (`:` and `;`), which RFC 5322 does not allow in a mailbox-list, and no
    ///   source route inside the brackets;
    /// - no unterminated quote, comment or bracket.
    public static func mailboxes(in value: String) -> [String]? {
        var mailboxes: [String] = []
        var phrase = ""  // outside <>: a display name, or the whole addr-spec; comments removed
        var phraseHasAt = false  // an unquoted "@" outside <>
        var angle: String?  // inside <...>
        var spec: String?  // the angle-addr, once closed
        var quoted = false
        var escaped = false
        var commentDepth = 0
        func finishMailbox() -> Bool {
            defer {
                phrase = ""
                phraseHasAt = false
                spec = nil
            }
            if let spec {
                guard !phraseHasAt, let address = Self.addrSpec(spec) else { return false }
                mailboxes.append(address)
                return true
            }
            let text = phrase.trimmingWhitespace()
            if text.isEmpty { return true }  // an empty element (",,", RFC 5322 §4.4)
            guard let address = Self.addrSpec(text) else { return false }
            mailboxes.append(address)
            return true
        }
        func append(_ character: Character, quotedText: Bool = false) -> Bool {
            if angle != nil {
                angle!.append(character)
            } else if spec != nil {
                // After the angle-addr only white space (comments are dropped before here).
                return character == " " || character == "\t" || character == "\r" || character == "\n"
            } else {
                if character == "@" && !quotedText { phraseHasAt = true }
                phrase.append(character)
            }
            return true
        }
        for character in value {
            if escaped {
                escaped = false
                if commentDepth > 0 { continue }
                guard append(character, quotedText: true) else { return nil }
                continue
            }
            if quoted {
                switch character {
                case "\\": escaped = true
                case "\"": quoted = false
                default: break
                }
                guard append(character, quotedText: true) else { return nil }
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
                guard append(character, quotedText: true) else { return nil }
            case "<":
                guard angle == nil, spec == nil else { return nil }
                angle = ""
            case ">":
                guard let inside = angle else { return nil }
                spec = inside
                angle = nil
            case ",":
                guard angle == nil, finishMailbox() else { return nil }
            case ":", ";":
                return nil
            default:
                guard append(character) else { return nil }
            }
        }
        guard !quoted, commentDepth == 0, angle == nil, finishMailbox() else { return nil }
        return mailboxes
    }

    /// `local@domain` with both parts present and no white space outside a quoted local part.
    static func addrSpec(_ text: String) -> String? {
        let spec = text.trimmingWhitespace()
        guard let at = spec.lastIndex(of: "@"), at != spec.startIndex, spec.index(after: at) != spec.endIndex else {
            return nil
        }
        let local = spec[..<at]
        let domain = spec[spec.index(after: at)...]
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard !domain.contains(where: isSpace), !domain.contains("\"") else { return nil }
        let quotedLocal = local.hasPrefix("\"") && local.hasSuffix("\"") && local.count >= 2
        guard quotedLocal || !local.contains(where: isSpace) else { return nil }
        return spec
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
