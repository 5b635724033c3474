// Where Petrel listens and how long and how much it takes from a client: [listen], [tls],
// [limits], [timeouts].

extension Configuration {
    public struct Listen: Sendable, Hashable {
        /// Port-25 style listeners: receive mail for our domains, STARTTLS, no AUTH, no relaying.
        public var smtp: [ListenAddress]
        /// Port-587 style (RFC 6409): STARTTLS, then AUTH before MAIL.
        public var submission: [ListenAddress]
        /// Port-465 style (RFC 8314): implicit TLS, then AUTH before MAIL.
        public var submissions: [ListenAddress]
        /// Port-143 style IMAP: STARTTLS, and no login before it.
        public var imap: [ListenAddress]
        /// Port-993 style IMAP (RFC 8314): implicit TLS.
        public var imaps: [ListenAddress]

        public init(
            smtp: [ListenAddress],
            submission: [ListenAddress] = [],
            submissions: [ListenAddress] = [],
            imap: [ListenAddress] = [],
            imaps: [ListenAddress] = []
        ) {
            self.smtp = smtp
            self.submission = submission
            self.submissions = submissions
            self.imap = imap
            self.imaps = imaps
        }
    }

    /// `[imap]`: IMAP's own limits (docs/imap.md).
    public struct IMAP: Sendable, Hashable {
        /// Open IMAP connections from one client (an IPv4 address or an IPv6 /64): separate
        /// from SMTP's, since a mail client keeps several open all day, and a household behind
        /// one NAT address has several clients.
        public var connectionsPerIP: Int = 50
        /// Logged-in sessions of one user at once.
        public var sessionsPerUser: Int = 20
        /// Silence allowed before login, in seconds.
        public var loginTimeout: Int = 60
        /// Silence allowed after login, in seconds: at least 30 minutes (RFC 9051 §5.4).
        public var idleTimeout: Int = 1_800
        /// The largest message APPEND takes (APPENDLIMIT); `limits.message_size` when nil.
        public var appendLimit: Int?

        public init() {}

        public static let keys = [
            "connections_per_ip", "sessions_per_user", "login_timeout", "idle_timeout", "append_limit",
        ]

        mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
            if let value = try table.int("connections_per_ip", in: 1...1_000_000) { self.connectionsPerIP = value }
            if let value = try table.int("sessions_per_user", in: 1...10_000) { self.sessionsPerUser = value }
            if let value = try table.int("login_timeout", in: 5...3_600) { self.loginTimeout = value }
            if let value = try table.int("idle_timeout", in: 1_800...86_400) { self.idleTimeout = value }
            if let value = try table.int("append_limit", in: 1...4_294_967_295) { self.appendLimit = value }
        }
    }

    /// `[quota]`: what a mailbox may hold (docs/imap.md, Quotas).
    public struct Quota: Sendable, Hashable {
        /// Octets of mail one mailbox may hold, all folders together, unless the mailbox has a
        /// quota of its own (`petrel user quota`); 0 for no limit.
        public var storage: UInt64 = 0

        public init(storage: UInt64 = 0) {
            self.storage = storage
        }

        /// The limit for a mailbox with this quota of its own (nil: the default); nil for none.
        public func limit(own: UInt64?) -> UInt64? {
            let limit = own ?? self.storage
            return limit == 0 ? nil : limit
        }

        mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
            if let value = try table.byteCount("storage") { self.storage = value }
        }
    }

    public struct TLSFiles: Sendable, Hashable {
        /// PEM: the certificate, then its chain.
        public var certificate: String
        /// PEM private key.
        public var key: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    public struct Limits: Sendable, Hashable {
        public var messageSize: Int = 26_214_400
        public var recipients: Int = 100
        public var connections: Int = 10_000
        public var connectionsPerIP: Int = 20
        public var errors: Int = 10

        public init() {}
    }

    /// Seconds.
    public struct Timeouts: Sendable, Hashable {
        /// Waiting for a command (RFC 5321 §4.5.3.2.7 asks for at least 5 minutes).
        public var command: Int = 300
        /// Waiting for more message content.
        public var data: Int = 300
        /// The whole transfer of one message, however steadily its octets arrive.
        public var dataTotal: Int = 1800
        /// A TLS handshake (implicit TLS, or after STARTTLS); no reply can be sent before it ends.
        public var tlsHandshake: Int = 30
        /// How long SIGTERM waits for open sessions before closing them.
        public var shutdown: Int = 30

        public init() {}
    }
}

extension Configuration.Listen {
    /// `[listen]`: a table replaces the default listeners, so only the kinds it names listen.
    static func read(_ table: inout TableReader) throws(ConfigurationError) -> Self {
        let listen = Self(
            smtp: try table.listenAddresses("smtp"),
            submission: try table.listenAddresses("submission"),
            submissions: try table.listenAddresses("submissions"),
            imap: try table.listenAddresses("imap"),
            imaps: try table.listenAddresses("imaps")
        )
        guard !(listen.smtp + listen.submission + listen.submissions + listen.imap + listen.imaps).isEmpty else {
            throw table.error("name at least one of smtp, submission, submissions, imap, imaps")
        }
        return listen
    }
}

extension Configuration.TLSFiles {
    /// `[tls]`: both files, relative to the configuration file's directory.
    static func read(_ table: inout TableReader, baseDirectory: String) throws(ConfigurationError) -> Self {
        guard let certificate = try table.string("certificate"), let key = try table.string("key") else {
            throw table.error("needs both certificate and key (PEM files)")
        }
        return Self(certificate: joinPath(baseDirectory, certificate), key: joinPath(baseDirectory, key))
    }
}

extension Configuration.Limits {
    /// `[limits]`
    mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
        if let value = try table.int("message_size", in: 1024...(1 << 40)) { self.messageSize = value }
        if let value = try table.int("recipients", in: 1...100_000) { self.recipients = value }
        if let value = try table.int("connections", in: 1...1_000_000) { self.connections = value }
        if let value = try table.int("connections_per_ip", in: 1...1_000_000) { self.connectionsPerIP = value }
        if let value = try table.int("errors", in: 1...10_000) { self.errors = value }
    }
}

extension Configuration.Timeouts {
    /// `[timeouts]`
    mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
        if let value = try table.int("command", in: 1...86_400) { self.command = value }
        if let value = try table.int("data", in: 1...86_400) { self.data = value }
        if let value = try table.int("data_total", in: 1...86_400) { self.dataTotal = value }
        if let value = try table.int("tls_handshake", in: 1...3_600) { self.tlsHandshake = value }
        if let value = try table.int("shutdown", in: 0...3_600) { self.shutdown = value }
    }
}

/// `host:port`, with IPv6 hosts in brackets: `127.0.0.1:2525`, `[::1]:2525`, `0.0.0.0:25`.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard host.contains(":") else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(" "), let port = Int(portText), (0...65535).contains(port) else {
            return nil
        }
        self.host = String(host)
        self.port = port
    }

    /// Also accepts a bare address, `192.0.2.53` or `2001:db8::53`, meaning `defaultPort`.
    public init?(parsing text: String, defaultPort: Int) {
        if let address = ListenAddress(parsing: text) {
            self = address
        } else if !text.contains(":") || (text.filter({ $0 == ":" }).count > 1 && !text.contains("[")) {
            let host = text.contains(":") ? "[\(text)]" : text
            self.init(parsing: "\(host):\(defaultPort)")
        } else {
            return nil
        }
    }

    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }
}
