import NIOCore

// How mail leaves and how names are looked up: [delivery], [relay], [dns].

extension Configuration {
    /// Seconds, except the connection counts.
    public struct DeliveryPolicy: Sendable, Hashable {
        /// The first retry after a temporary failure; each next one waits twice as long...
        public var retryFirst = 300
        /// ...up to this.
        public var retryMaximum = 3600
        /// A message not delivered after this long is returned to its sender.
        public var maximumAge = 432_000
        /// Tell the sender once when a message is still undelivered after this long; nil: never.
        public var delayNotice: Int?
        /// Outbound connections at once, in all and per destination domain.
        public var connections = 20
        public var connectionsPerDomain = 4
        /// Keep everything in the queue, deliver nothing (maintenance; `petrel queue retry`
        /// does not override it). Messages still age and expire once it is lifted.
        public var hold = false
        /// Caps the wait for each reply of a remote server (RFC 5321 §4.5.3.2 gives 2 to 10
        /// minutes); nil keeps the RFC's.
        public var replyTimeout: Int?

        public init() {}
    }

    /// `[relay]`: `host = "smtp.provider.example:587"` (465 is TLS from the start, any other
    /// port STARTTLS), TLS required and its certificate verified.
    public struct Relay: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var username: String?
        public var password: String?
        /// PEM certificates to trust instead of the system's roots.
        public var caFile: String?

        public init(host: String, port: Int, username: String? = nil, password: String? = nil, caFile: String? = nil) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.caFile = caFile
        }

        /// Never the password, wherever this is printed.
        public var description: String {
            "\(self.host):\(self.port)" + (self.username.map { " as \($0)" } ?? "")
        }
    }

    /// Petrel's own stub resolver.
    public struct DNSSettings: Sendable, Hashable {
        /// Recursive resolvers; nil means the `nameserver` lines of /etc/resolv.conf.
        public var servers: [ListenAddress]?
        /// Seconds to wait for one server, once.
        public var timeout: Int = 2
        /// Rounds over all servers.
        public var attempts: Int = 2

        public init() {}
    }
}

extension Configuration.DeliveryPolicy {
    /// `[delivery]`
    mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
        if let value = try table.int("retry_first", in: 1...86_400) { self.retryFirst = value }
        if let value = try table.int("retry_max", in: 1...604_800) { self.retryMaximum = value }
        if let value = try table.int("max_age", in: 60...(60 * 86_400)) { self.maximumAge = value }
        if let value = try table.int("delay_notice", in: 0...(60 * 86_400)) {
            self.delayNotice = value == 0 ? nil : value
        }
        if let value = try table.int("connections", in: 1...10_000) { self.connections = value }
        if let value = try table.int("connections_per_domain", in: 1...1_000) { self.connectionsPerDomain = value }
        if let value = try table.int("reply_timeout", in: 1...3_600) { self.replyTimeout = value }
        if let value = try table.bool("hold") { self.hold = value }
        guard self.retryMaximum >= self.retryFirst else {
            throw table.error("retry_max", "must be at least retry_first (\(self.retryFirst))")
        }
    }
}

extension Configuration.Relay {
    /// `[relay]`: `host` is required; the CA file is relative to the configuration file's directory.
    static func read(_ table: inout TableReader, baseDirectory: String) throws(ConfigurationError) -> Self {
        guard let host = try table.string("host") else {
            throw table.error("host", "is required in [relay]: host = \"smtp.provider.example:587\"")
        }
        guard let address = ListenAddress(parsing: host), address.port > 0 else {
            throw table.error("host", "'\(host)' is not host:port (smtp.provider.example:587)")
        }
        var relay = Self(host: address.host, port: address.port)
        relay.username = try table.string("username")
        relay.password = try table.string("password")
        guard (relay.username == nil) == (relay.password == nil) else {
            throw table.error(relay.username == nil ? "username" : "password", "username and password go together")
        }
        if let file = try table.string("ca_file") { relay.caFile = joinPath(baseDirectory, file) }
        return relay
    }
}

extension Configuration.DNSSettings {
    /// `[dns]`
    mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
        if try table.stringArray("servers") != nil {
            let servers = try table.listenAddresses("servers", defaultPort: 53)
            guard !servers.isEmpty else {
                throw table.error("servers", "name at least one server, or leave the key out for /etc/resolv.conf")
            }
            for server in servers where (try? SocketAddress(ipAddress: server.host, port: server.port)) == nil {
                throw table.error("servers", "'\(server.host)' is not an IP address; resolvers are named by address")
            }
            self.servers = servers
        }
        if let value = try table.int("timeout", in: 1...60) { self.timeout = value }
        if let value = try table.int("attempts", in: 1...10) { self.attempts = value }
    }
}
