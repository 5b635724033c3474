import SMTPCore

public struct DeliverySettings: Sendable {
    /// Our name: in EHLO, as the Reporting-MTA, and the MAILER-DAEMON's domain.
    public var hostname: String
    /// Domains we receive for (lower case, ASCII): their recipients are delivered locally and
    /// their mail is signed.
    public var localDomains: Set<String>
    public var schedule = RetrySchedule()
    /// Connections open at once, in all.
    public var connections = 20
    /// Connections open at once to one destination domain (or the relay).
    public var connectionsPerDomain = 4
    /// Seconds after which the sender is told that a message is still being retried; nil: never.
    public var delayNotice: Int?
    /// Everything remote goes to this host, TLS required.
    public var relay: Relay?
    /// Deliver nothing: the queue only fills (requests from `petrel queue` are still handled).
    public var hold = false
    /// MX addresses tried per destination and attempt (Postfix's smtp_mx_address_limit).
    public var addressesPerAttempt = 5

    public struct Relay: Sendable {
        public var host: String
        public var port: Int
        public var credentials: ClientSession.Credentials?

        public init(host: String, port: Int, credentials: ClientSession.Credentials?) {
            self.host = host
            self.port = port
            self.credentials = credentials
        }
    }

    public init(hostname: String, localDomains: Set<String>) {
        self.hostname = hostname
        self.localDomains = localDomains
    }
}
