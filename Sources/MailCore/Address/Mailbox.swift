/// The part after "@": a domain or an address literal (RFC 5321 §4.1.2 `Mailbox`).
public enum Host: Hashable, Sendable, CustomStringConvertible {
    case domain(Domain)
    case addressLiteral(AddressLiteral)

    public var description: String {
        switch self {
        case .domain(let domain): return domain.name
        case .addressLiteral(let literal): return literal.description
        }
    }

    public var isASCII: Bool {
        switch self {
        case .domain(let domain): return domain.isASCII
        case .addressLiteral: return true
        }
    }

    /// The domain, when the host is not an address literal.
    public var domain: Domain? {
        switch self {
        case .domain(let domain): return domain
        case .addressLiteral: return nil
        }
    }
}

/// An SMTP mailbox, `local-part@host` (RFC 5321 §4.1.2).
///
/// `localPart` is the decoded local part: quotes and quoted-pair backslashes removed, so
/// `"john smith"@example.com` and `john\ smith` compare by content. `description` renders it
/// back in the shortest valid form (RFC 5321 §4.1.2: a quoted string that could be a
/// dot-string should be sent as one).
public struct Mailbox: Hashable, Sendable, CustomStringConvertible {
    public var localPart: String
    public var host: Host

    public init(localPart: String, host: Host) {
        self.localPart = localPart
        self.host = host
    }

    /// Parses a bare mailbox such as `alice@example.com` (no angle brackets).
    public init?(_ text: some StringProtocol) {
        var parser = PathParser(bytes: Array(text.utf8))
        guard let mailbox = try? parser.parseMailbox(), parser.atEnd else { return nil }
        self = mailbox
    }

    public var isASCII: Bool { self.localPart.utf8.allSatisfy { $0 < 0x80 } && self.host.isASCII }

    public var domain: Domain? { self.host.domain }

    public var description: String {
        let bytes = Array(self.localPart.utf8)
        let local = PathParser.isDotString(bytes) ? self.localPart : Mailbox.quoted(bytes)
        return "\(local)@\(self.host)"
    }

    private static func quoted(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = [0x22]
        for byte in bytes {
            if byte == 0x22 || byte == 0x5C { out.append(0x5C) }
            out.append(byte)
        }
        out.append(0x22)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The MAIL FROM argument: a mailbox or the null path `<>` used by bounces (RFC 5321 §4.5.5).
public enum ReversePath: Hashable, Sendable, CustomStringConvertible {
    case null
    case mailbox(Mailbox)

    public var mailbox: Mailbox? {
        switch self {
        case .null: return nil
        case .mailbox(let mailbox): return mailbox
        }
    }

    public var isASCII: Bool { self.mailbox?.isASCII ?? true }

    /// With angle brackets, as in `Return-Path:` and log lines.
    public var description: String {
        switch self {
        case .null: return "<>"
        case .mailbox(let mailbox): return "<\(mailbox)>"
        }
    }
}

/// The RCPT TO argument (RFC 5321 §4.1.1.3). `<Postmaster>` without a domain is legal
/// and must be accepted (§4.5.1); any source route before the mailbox is dropped (§C).
public enum ForwardPath: Hashable, Sendable, CustomStringConvertible {
    case postmaster
    case mailbox(Mailbox)

    public var isASCII: Bool {
        switch self {
        case .postmaster: return true
        case .mailbox(let mailbox): return mailbox.isASCII
        }
    }

    public var description: String {
        switch self {
        case .postmaster: return "<postmaster>"
        case .mailbox(let mailbox): return "<\(mailbox)>"
        }
    }
}
