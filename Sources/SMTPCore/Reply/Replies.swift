import MailCore

/// The replies the server sends, in one place so that codes and texts stay consistent.
/// Codes: RFC 5321 §4.2.2-4.2.3; enhanced codes: RFC 3463 and the IANA registry.
extension SMTPReply {
    public static func greeting(hostname: String) -> SMTPReply {
        SMTPReply(220, nil, "\(hostname) ESMTP Petrel")
    }

    public static func ehlo(hostname: String, clientName: String, keywords: [String]) -> SMTPReply {
        SMTPReply(250, nil, ["\(hostname) Hello \(clientName)"] + keywords)
    }

    public static func helo(hostname: String) -> SMTPReply {
        SMTPReply(250, nil, "\(hostname)")
    }

    public static let ok = SMTPReply(250, EnhancedStatusCode(2, 0, 0), "OK")
    public static let resetOK = SMTPReply(250, EnhancedStatusCode(2, 0, 0), "Reset OK")
    public static let startMailInput = SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>")
    public static let cannotVerify = SMTPReply(
        252,
        EnhancedStatusCode(2, 0, 0),
        "Cannot VRFY user, but will accept message and attempt delivery"
    )

    public static func senderOK(_ path: String) -> SMTPReply {
        SMTPReply(250, EnhancedStatusCode(2, 1, 0), "Sender \(path) OK")
    }

    public static func recipientOK(_ path: String) -> SMTPReply {
        SMTPReply(250, EnhancedStatusCode(2, 1, 5), "Recipient \(path) OK")
    }

    public static func messageAccepted(id: String) -> SMTPReply {
        SMTPReply(250, EnhancedStatusCode(2, 0, 0), "OK: queued as \(id)")
    }

    public static func chunkAccepted(octets: UInt64) -> SMTPReply {
        SMTPReply(250, EnhancedStatusCode(2, 0, 0), "\(octets) octets received")
    }

    public static func closing(hostname: String) -> SMTPReply {
        SMTPReply(221, EnhancedStatusCode(2, 0, 0), "\(hostname) closing connection")
    }

    public static let help = SMTPReply(
        214,
        EnhancedStatusCode(2, 0, 0),
        [
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT",
            "See RFC 5321 for their use",
        ]
    )

    // MARK: - Syntax and sequence (5.5.x)

    public static let commandUnrecognized = SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Command unrecognized")

    public static func commandLineTooLong(limit: Int) -> SMTPReply {
        SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Line too long; a command line is at most \(limit) octets")
    }

    public static func syntaxError(_ reason: String) -> SMTPReply {
        SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Syntax error: \(reason)")
    }

    public static func argumentError(_ reason: String) -> SMTPReply {
        SMTPReply(501, EnhancedStatusCode(5, 5, 4), "Syntax error in arguments: \(reason)")
    }

    /// A path that does not follow RFC 5321 §4.1.2. Like every syntax error it is `501 5.5.4`;
    /// the text says which address and why.
    public static func addressSyntaxError(_ reason: String, sender: Bool) -> SMTPReply {
        SMTPReply(501, EnhancedStatusCode(5, 5, 4), "Bad \(sender ? "sender" : "recipient") address syntax: \(reason)")
    }

    public static func notImplemented(_ verb: String) -> SMTPReply {
        SMTPReply(502, EnhancedStatusCode(5, 5, 1), "\(verb) not implemented")
    }

    public static func badSequence(_ reason: String) -> SMTPReply {
        SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Bad sequence of commands: \(reason)")
    }

    public static func unknownParameter(_ keyword: String) -> SMTPReply {
        SMTPReply(555, EnhancedStatusCode(5, 5, 4), "Unsupported parameter \(keyword)")
    }

    /// RCPT TO a local address that is no mailbox or alias.
    public static func unknownRecipient(_ path: String) -> SMTPReply {
        SMTPReply(550, EnhancedStatusCode(5, 1, 1), "\(path): Recipient address rejected: user unknown")
    }

    /// RCPT TO a mailbox over its quota: temporary (RFC 3463's X.2.2, mailbox full), so the
    /// sender keeps the message and tries again; the mail is never taken and lost.
    public static func mailboxFull(_ path: String) -> SMTPReply {
        SMTPReply(452, EnhancedStatusCode(4, 2, 2), "\(path): Mailbox full; try again later")
    }

    /// RCPT TO another domain from a client that has not authenticated: no open relay.
    public static func relayDenied(_ path: String) -> SMTPReply {
        SMTPReply(554, EnhancedStatusCode(5, 7, 1), "\(path): Relay access denied")
    }

    /// The account directory could not be read: try again later.
    public static func recipientLookupFailed(_ path: String) -> SMTPReply {
        SMTPReply(451, EnhancedStatusCode(4, 3, 0), "\(path): Temporary lookup failure")
    }

    public static let noValidRecipients = SMTPReply(554, EnhancedStatusCode(5, 5, 1), "No valid recipients")

    public static let utf8AddressNeedsSMTPUTF8 = SMTPReply(
        553,
        EnhancedStatusCode(5, 6, 7),
        "Non-ASCII address requires the SMTPUTF8 parameter on MAIL FROM"
    )

    // MARK: - Limits

    public static func messageTooLarge(limit: Int) -> SMTPReply {
        SMTPReply(
            552,
            EnhancedStatusCode(5, 3, 4),
            "Message size exceeds fixed maximum message size of \(limit) octets"
        )
    }

    public static let tooManyRecipients = SMTPReply(452, EnhancedStatusCode(4, 5, 3), "Too many recipients")

    public static func messageRefused(_ reason: String) -> SMTPReply {
        SMTPReply(554, EnhancedStatusCode(5, 6, 0), "Message refused: \(reason)")
    }

    // MARK: - TLS and authentication (RFC 3207, RFC 4954)

    public static let readyToStartTLS = SMTPReply(220, EnhancedStatusCode(2, 0, 0), "Ready to start TLS")

    /// A SASL challenge: 334 and the base64 of the data, with no enhanced code (a 3xx reply).
    public static func saslChallenge(_ data: [UInt8]) -> SMTPReply {
        SMTPReply(334, nil, Base64.encode(data))
    }

    public static let authenticationSucceeded = SMTPReply(235, EnhancedStatusCode(2, 7, 0), "Authentication successful")
    public static let authenticationFailed = SMTPReply(
        535,
        EnhancedStatusCode(5, 7, 8),
        "Authentication credentials invalid"
    )
    public static let authenticationCancelled = SMTPReply(501, EnhancedStatusCode(5, 7, 0), "Authentication cancelled")
    /// RFC 4954 §6: the server cannot check the credentials now (too many checks under way).
    public static let temporaryAuthenticationFailure = SMTPReply(
        454,
        EnhancedStatusCode(4, 7, 0),
        "Temporary authentication failure; try again later"
    )

    public static func saslMalformed(_ reason: String) -> SMTPReply {
        SMTPReply(501, EnhancedStatusCode(5, 5, 2), "Malformed authentication exchange: \(reason)")
    }

    public static func unknownMechanism(_ name: String) -> SMTPReply {
        SMTPReply(504, EnhancedStatusCode(5, 5, 4), "Unrecognized authentication mechanism \(name)")
    }

    public static let authenticationRequired = SMTPReply(530, EnhancedStatusCode(5, 7, 0), "Authentication required")
    public static let encryptionRequired = SMTPReply(
        538,
        EnhancedStatusCode(5, 7, 11),
        "Encryption required for requested authentication mechanism; use STARTTLS first"
    )
    public static let authenticationNotEnabled = SMTPReply(
        503,
        EnhancedStatusCode(5, 5, 1),
        "Authentication is not enabled on this port; use the submission port"
    )

    public static func senderNotOwned(_ path: String) -> SMTPReply {
        SMTPReply(553, EnhancedStatusCode(5, 7, 1), "Sender address \(path) is not owned by the authenticated user")
    }

    public static func tooManyAuthenticationFailures(hostname: String) -> SMTPReply {
        SMTPReply(421, EnhancedStatusCode(4, 7, 0), "\(hostname) Too many failed authentications; try again later")
    }

    // MARK: - Local conditions

    public static let insufficientStorage = SMTPReply(
        452,
        EnhancedStatusCode(4, 3, 1),
        "Insufficient system storage; try again later"
    )
    public static let localError = SMTPReply(
        451,
        EnhancedStatusCode(4, 3, 0),
        "Local error in processing; try again later"
    )

    // MARK: - Closing the session (421 is allowed in reply to any command, RFC 5321 §3.8)

    public static func tooManyErrors(hostname: String) -> SMTPReply {
        SMTPReply(421, EnhancedStatusCode(4, 7, 0), "\(hostname) Too many errors; closing connection")
    }

    public static func timeout(hostname: String) -> SMTPReply {
        SMTPReply(421, EnhancedStatusCode(4, 4, 2), "\(hostname) Timeout exceeded; closing connection")
    }

    public static func shuttingDown(hostname: String) -> SMTPReply {
        SMTPReply(421, EnhancedStatusCode(4, 3, 2), "\(hostname) Service shutting down; try again later")
    }

    public static func tooManyConnections(hostname: String) -> SMTPReply {
        SMTPReply(421, EnhancedStatusCode(4, 7, 0), "\(hostname) Too many connections; try again later")
    }
}
