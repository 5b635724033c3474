import MailCore

/// The Authentication-Results header field (RFC 8601) Petrel adds to a message it received: one
/// line per method, the reason as a comment, the identifiers as properties.
public struct AuthenticationResults: Sendable {
    /// Our host name: the authserv-id that says who vouches for these results.
    public var authservID: String
    /// The SPF verdict and whether it was for the MAIL FROM or the HELO identity.
    public var spf: (verdict: SPFVerdict, helo: Bool)?
    public var dkim: [DKIMVerdict]
    public var dmarc: DMARCVerdict?

    public init(
        authservID: String,
        spf: (verdict: SPFVerdict, helo: Bool)?,
        dkim: [DKIMVerdict],
        dmarc: DMARCVerdict?
    ) {
        self.authservID = authservID
        self.spf = spf
        self.dkim = dkim
        self.dmarc = dmarc
    }

    /// The whole field, folded, with its final CRLF.
    public var rendered: String {
        var results: [String] = []
        if let (verdict, helo) = self.spf {
            let property =
                helo ? "smtp.helo=" + Self.value(verdict.domain) : "smtp.mailfrom=" + Self.value(verdict.sender)
            results.append("spf=\(verdict.result.rawValue) \(Self.comment(verdict.reason)) \(property)")
        }
        if self.dkim.isEmpty {
            results.append("dkim=none (no signatures)")
        }
        for verdict in self.dkim {
            var line = "dkim=\(verdict.result.rawValue) \(Self.comment(verdict.reason))"
            if let domain = verdict.domain { line += " header.d=" + Self.value(domain) }
            if let selector = verdict.selector { line += " header.s=" + Self.value(selector) }
            if let identity = verdict.identity { line += " header.i=" + Self.value(identity) }
            // RFC 6008: enough of b= to tell two signatures of one domain apart.
            if let signature = verdict.signatureText { line += " header.b=" + Self.value(String(signature.prefix(8))) }
            results.append(line)
        }
        if let dmarc = self.dmarc {
            var line = "dmarc=\(dmarc.result.rawValue) \(Self.comment(dmarc.reason))"
            if let domain = dmarc.authorDomains.first { line += " header.from=" + Self.value(domain) }
            if let policy = dmarc.policy { line += " policy.dmarc=" + policy.rawValue }
            results.append(line)
        }
        return "Authentication-Results: \(self.authservID);\r\n\t" + results.joined(separator: ";\r\n\t") + "\r\n"
    }

    /// A comment: parentheses and backslashes escaped, anything but printable ASCII replaced,
    /// so nothing from a DNS record or a header can break out of it or fold the field.
    static func comment(_ text: String) -> String {
        var output = "("
        for scalar in text.unicodeScalars.prefix(300) {
            switch scalar {
            case "(", ")", "\\":
                output += "\\" + String(scalar)
            case " "..."~":
                output.unicodeScalars.append(scalar)
            default:
                output += "?"
            }
        }
        return output + ")"
    }

    /// A property value: as is when it is a plain token, an address or a domain; otherwise quoted.
    static func value(_ text: String) -> String {
        let plain =
            !text.isEmpty
            && text.unicodeScalars.allSatisfy { scalar in
                ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                    || "-._@+".unicodeScalars.contains(scalar)
            }
        if plain { return text }
        var quoted = "\""
        for scalar in text.unicodeScalars.prefix(300) {
            switch scalar {
            case "\"", "\\": quoted += "\\" + String(scalar)
            case " "..."~": quoted.unicodeScalars.append(scalar)
            default: quoted += "?"
            }
        }
        return quoted + "\""
    }

    /// The authserv-id an Authentication-Results field claims (RFC 8601 §2.2), lower case and
    /// without a final dot: its first value, comments skipped, a quoted string unquoted (RFC 8601
    /// allows `"mx.example.com"` as well as `mx.example.com`). Used to drop incoming fields that
    /// pretend to be ours (§5), so it reads as leniently as any consumer of the field might.
    public static func authservID(of field: HeaderField) -> String? {
        guard field.hasName("Authentication-Results") else { return nil }
        var text = Substring(field.value)
        var id = ""
        var depth = 0
        var quoted = false
        while let character = text.first {
            text = text.dropFirst()
            if character == "\\" {
                // A quoted pair, in a comment or a quoted string.
                if let next = text.first, quoted { id.append(next) }
                text = text.dropFirst()
                continue
            }
            if depth > 0 {
                if character == "(" { depth += 1 }
                if character == ")" { depth -= 1 }
                continue
            }
            if quoted {
                if character == "\"" { break }
                id.append(character)
                continue
            }
            switch character {
            case "(":
                depth = 1
            case "\"" where id.isEmpty:
                quoted = true
            case ";", "\"":
                return Self.normalized(id)
            case " ", "\t", "\r", "\n":
                if !id.isEmpty { return Self.normalized(id) }
            default:
                id.append(character)
            }
        }
        return Self.normalized(id)
    }

    private static func normalized(_ id: String) -> String? {
        var id = id.trimmingWhitespace().lowercased()
        if id.hasSuffix(".") { id.removeLast() }
        return id.isEmpty ? nil : id
    }
}
