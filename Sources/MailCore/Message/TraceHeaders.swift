/// The trace fields a receiving SMTP server prepends (RFC 5321 §4.4): `Return-Path:` with
/// the reverse path, and `Received:` saying who handed the message to whom, how and when.
public struct TraceHeaders: Hashable, Sendable {
    /// The EHLO/HELO argument as the client gave it.
    public var heloName: String
    /// The client's IP address as an address literal, e.g. `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
    public var clientAddressLiteral: String
    /// Our host name (`by` clause).
    public var serverHostname: String
    /// RFC 3848 / RFC 6531 protocol keyword: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP, ...
    public var protocolKeyword: String
    /// The TLS session, as "TLSv1.3 with cipher TLS_AES_128_GCM_SHA256"; a comment in `Received:`.
    public var tls: String?
    /// The queue id of this message (`id` clause).
    public var id: String
    /// Set only when the message has a single recipient: naming all would leak Bcc recipients.
    public var recipient: ForwardPath?
    public var date: MessageDate
    public var reversePath: ReversePath

    public init(
        heloName: String,
        clientAddressLiteral: String,
        serverHostname: String,
        protocolKeyword: String,
        id: String,
        recipient: ForwardPath?,
        date: MessageDate,
        reversePath: ReversePath,
        tls: String? = nil
    ) {
        self.heloName = heloName
        self.clientAddressLiteral = clientAddressLiteral
        self.serverHostname = serverHostname
        self.protocolKeyword = protocolKeyword
        self.id = id
        self.recipient = recipient
        self.date = date
        self.reversePath = reversePath
        self.tls = tls
    }

    /// The protocol keyword for the `with` clause: RFC 3848 (ESMTP, S for TLS, A for AUTH) and
    /// RFC 6531 §3.7.3 (UTF8SMTP family when the client used SMTPUTF8).
    public static func protocolKeyword(extended: Bool, smtpUTF8: Bool, tls: Bool, authenticated: Bool) -> String {
        var keyword = smtpUTF8 ? "UTF8SMTP" : (extended ? "ESMTP" : "SMTP")
        if tls { keyword += "S" }
        if authenticated { keyword += "A" }
        return keyword
    }

    /// Both fields, folded at clause boundaries, each line ending in CRLF.
    public var rendered: String { self.returnPath + self.received }

    public var returnPath: String { "Return-Path: \(self.reversePath)\r\n" }

    public var received: String {
        var text = "Received: from \(self.heloName) (\(self.clientAddressLiteral))\r\n"
        if let tls = self.tls {
            text += "\t(using \(tls))\r\n"
        }
        text += "\tby \(self.serverHostname) (Petrel) with \(self.protocolKeyword) id \(self.id)"
        if let recipient = self.recipient {
            text += "\r\n\tfor \(recipient)"
        }
        text += ";\r\n\t\(self.date)\r\n"
        return text
    }
}
