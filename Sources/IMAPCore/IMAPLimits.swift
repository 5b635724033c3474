/// Every limit on what an IMAP client sends, in one value (as `SMTPLimits` is for SMTP). RFC 9051
/// leaves them to the server; §4 asks that lines of at least 8,000 octets be accepted, and real
/// clients send long sequence sets (`UID FETCH 1,3,5,…`), so a line may be as long as Dovecot's
/// default allows.
public struct IMAPLimits: Hashable, Sendable {
    /// One line of a command, CRLF included.
    public var lineLength = 65_536
    /// A literal kept in memory (a password, a search string, a mailbox name); a larger one is
    /// taken only as a stream (APPEND's message) or refused.
    public var inlineLiteralSize = 65_536
    /// All of one command held in memory: its lines and inline literals together.
    public var commandSize = 1_048_576
    /// Literals in one command (each costs bookkeeping, even `{0}`).
    public var literals = 1_000

    /// What a client that has not logged in may hold in memory: enough for LOGIN with literals,
    /// AUTHENTICATE, ID; a stranger holds no more than this and a line per connection.
    public static let beforeLoginCommandSize = 16_384

    public init() {}
}
