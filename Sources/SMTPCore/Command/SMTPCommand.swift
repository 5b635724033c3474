import MailCore

/// A parsed SMTP command (RFC 5321 §4.1.1 and the extensions Petrel implements).
public enum SMTPCommand: Hashable, Sendable {
    case ehlo(String)
    case helo(String)
    case mail(ReversePath, MailParameters)
    case rcpt(ForwardPath)
    case data
    /// RFC 3030 CHUNKING: the next `size` octets are message content.
    case bdat(size: UInt64, last: Bool)
    case rset
    case noop
    case vrfy(String)
    case expn(String)
    case help
    case quit
    case startTLS
    case auth(mechanism: String, initialResponse: String?)

    /// The verb, upper case, for logs.
    public var verb: String {
        switch self {
        case .ehlo: return "EHLO"
        case .helo: return "HELO"
        case .mail: return "MAIL"
        case .rcpt: return "RCPT"
        case .data: return "DATA"
        case .bdat: return "BDAT"
        case .rset: return "RSET"
        case .noop: return "NOOP"
        case .vrfy: return "VRFY"
        case .expn: return "EXPN"
        case .help: return "HELP"
        case .quit: return "QUIT"
        case .startTLS: return "STARTTLS"
        case .auth: return "AUTH"
        }
    }
}

/// The ESMTP parameters of MAIL FROM that Petrel understands.
public struct MailParameters: Hashable, Sendable {
    /// RFC 1870 `SIZE=`; a value too large for 64 bits reads as `UInt64.max`.
    public var size: UInt64?
    /// RFC 6152 `BODY=`.
    public var body: BodyType?
    /// RFC 6531 `SMTPUTF8`.
    public var smtpUTF8: Bool

    public init(size: UInt64? = nil, body: BodyType? = nil, smtpUTF8: Bool = false) {
        self.size = size
        self.body = body
        self.smtpUTF8 = smtpUTF8
    }
}

/// A command line that could not be parsed, with the reply it deserves.
public struct SMTPCommandError: Error, Hashable, Sendable {
    public var reply: SMTPReply

    public init(_ reply: SMTPReply) { self.reply = reply }
}
