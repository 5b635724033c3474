/// The MAIL FROM `BODY=` parameter: RFC 6152 (8BITMIME). BINARYMIME (RFC 3030) is not offered.
public enum BodyType: String, Hashable, Sendable {
    case sevenBit = "7BIT"
    case eightBitMIME = "8BITMIME"
}

/// One accepted RCPT TO and the local mailboxes it resolved to (an alias may name several). No
/// mailboxes means the recipient is elsewhere: the message is relayed to it.
public struct EnvelopeRecipient: Hashable, Sendable {
    public var forwardPath: ForwardPath
    public var mailboxes: [Mailbox]

    public init(forwardPath: ForwardPath, mailboxes: [Mailbox]) {
        self.forwardPath = forwardPath
        self.mailboxes = mailboxes
    }
}

/// The SMTP envelope of one transaction (RFC 5321 §2.3.1): who sent it, to whom, and how.
public struct Envelope: Hashable, Sendable {
    public var reversePath: ReversePath
    public var recipients: [EnvelopeRecipient]
    public var bodyType: BodyType?
    /// The client asked for SMTPUTF8 (RFC 6531 §3.4).
    public var smtpUTF8: Bool
    /// The `SIZE=` the client declared (RFC 1870), if any.
    public var declaredSize: UInt64?

    public init(
        reversePath: ReversePath,
        recipients: [EnvelopeRecipient] = [],
        bodyType: BodyType? = nil,
        smtpUTF8: Bool = false,
        declaredSize: UInt64? = nil
    ) {
        self.reversePath = reversePath
        self.recipients = recipients
        self.bodyType = bodyType
        self.smtpUTF8 = smtpUTF8
        self.declaredSize = declaredSize
    }

    /// Recipients at other servers, each once, in the order named.
    public var remoteRecipients: [Mailbox] {
        var result: [Mailbox] = []
        for recipient in self.recipients where recipient.mailboxes.isEmpty {
            if case .mailbox(let mailbox) = recipient.forwardPath, !result.contains(mailbox) { result.append(mailbox) }
        }
        return result
    }

    /// Every mailbox the message goes to, each once, in the order first named.
    public var mailboxes: [Mailbox] {
        var seen = Set<String>()
        var result: [Mailbox] = []
        for recipient in self.recipients {
            for mailbox in recipient.mailboxes where seen.insert(mailbox.description.asciiLowercased).inserted {
                result.append(mailbox)
            }
        }
        return result
    }
}
