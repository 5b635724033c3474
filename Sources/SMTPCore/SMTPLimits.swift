/// Every limit the SMTP server enforces, in one value (as `NIOHTTPDecoderLimitConfiguration`
/// does for HTTP). Defaults follow RFC 5321 §4.5.3.1 and common MTA practice.
public struct SMTPLimits: Hashable, Sendable {
    /// A command line, CRLF included (RFC 5321 §4.5.3.1.4: 512).
    public var commandLineLength: Int = 512
    /// A line of message text, CRLF included (RFC 5321 §4.5.3.1.6: 1000).
    public var textLineLength: Int = 1000
    /// The largest message, in octets of content as received; advertised as `SIZE` (RFC 1870).
    public var messageSize: Int = 26_214_400
    /// Recipients in one transaction; RFC 5321 §4.5.3.1.8 asks for at least 100.
    public var recipients: Int = 100
    /// Failed commands in one session before the server says 421 and closes.
    public var errors: Int = 10

    public init() {}

    public init(messageSize: Int, recipients: Int, errors: Int = 10) {
        self.messageSize = messageSize
        self.recipients = recipients
        self.errors = errors
    }
}
