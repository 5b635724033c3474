import Accounts
import DNSClient
import Logging
import MailCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything an operator can set. Read from TOML by `ConfigurationLoader`; without a file the
/// embedded defaults make a working server for `localhost` on 127.0.0.1:2525.
public struct Configuration: Sendable, Hashable {
    /// Our host name: EHLO, greeting, Received headers.
    public var hostname: String
    /// Absolute path of the data directory (queue, Maildirs, accounts).
    public var dataDirectory: String
    /// Domains we receive mail for, canonical (lower case), first is primary.
    public var domains: [String]
    /// Where postmaster@ mail goes when no mailbox or alias of that name exists.
    public var postmaster: AccountAddress?
    /// `alice+tag@` reaches `alice@`; nil turns subaddressing off.
    public var recipientDelimiter: Character?
    public var listen: Listen
    /// Certificate and key files; nil means a self-signed certificate made under `DATA_DIR/tls/`.
    public var tls: TLSFiles?
    public var limits: Limits
    public var timeouts: Timeouts
    public var authentication: AuthenticationPolicy
    public var mailAuthentication = MailAuthenticationPolicy()
    public var dns: DNSSettings
    public var logLevel: Logger.Level
    public var logFormat = LogfmtHandler.Format.text
    /// The public addresses mail for `hostname` arrives at (`addresses`): the A, AAAA, SPF and
    /// PTR records of `petrel dns`, and what `petrel doctor` expects DNS to say.
    public var publicAddresses: [IPAddress] = []
    /// Outbound delivery (`[delivery]`).
    public var delivery = DeliveryPolicy()
    /// A smarthost for all outbound mail (`[relay]`); MX lookup when nil.
    public var relay: Relay?
    /// `[metrics] listen`: where Prometheus text is served; off when nil.
    public var metricsListen: ListenAddress?

    public struct Listen: Sendable, Hashable {
        /// Port-25 style listeners: receive mail for our domains, STARTTLS, no AUTH, no relaying.
        public var smtp: [ListenAddress]
        /// Port-587 style (RFC 6409): STARTTLS, then AUTH before MAIL.
        public var submission: [ListenAddress]
        /// Port-465 style (RFC 8314): implicit TLS, then AUTH before MAIL.
        public var submissions: [ListenAddress]

        public init(smtp: [ListenAddress], submission: [ListenAddress] = [], submissions: [ListenAddress] = []) {
            self.smtp = smtp
            self.submission = submission
            self.submissions = submissions
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

    /// Petrel's own stub resolver.
    public struct DNSSettings: Sendable, Hashable {
        /// Recursive resolvers; nil means the `nameserver` lines of /etc/resolv.conf.
        public var servers: [ListenAddress]?
        /// Seconds to wait for one server, once.
        public var timeout: Int = 2
        /// Rounds over all servers.
        public var attempts: Int = 2
    }

    /// Failed logins: after `failures` within `window` seconds from one client (an IPv4 address
    /// or an IPv6 /64), it gets 421 for `block` seconds; after as many for one account, its
    /// password checks take turns, one per delay that doubles up to `accountDelayMax` seconds.
    public struct AuthenticationPolicy: Sendable, Hashable {
        public var failures: Int = 5
        public var window: Int = 600
        public var block: Int = 600
        public var accountDelayMax: Int = 30
    }

    /// SPF, DKIM and DMARC on mail from other servers (`[auth]`): what is checked, and what a
    /// failure does. Mail from authenticated users is never checked.
    public struct MailAuthenticationPolicy: Sendable, Hashable {
        public enum Action: String, Sendable, Hashable {
            /// 550 5.7.1 at the end of data.
            case reject
            /// Delivered into the junk folder.
            case quarantine
            /// Delivered as usual (the result is still recorded).
            case none
        }

        /// Check and record SPF, DKIM and DMARC (Authentication-Results).
        public var verify = true
        /// DMARC fail under p=reject.
        public var dmarcReject = Action.reject
        /// DMARC fail under p=quarantine.
        public var dmarcQuarantine = Action.quarantine
        /// DNS trouble finding the DMARC policy: 451 4.7.5 (try later) rather than accept, unless
        /// an SPF or DKIM pass for the From domain itself makes the policy moot.
        public var deferOnDMARCTemperror = true
        /// SPF fail for a domain without DMARC: 550 5.7.23 instead of recording it.
        public var rejectSPFFail = false
        /// The Maildir++ folder quarantined mail goes to.
        public var junkFolder = ".Junk"
        /// Seconds SPF may take in all (RFC 7208 §4.6.4 asks for a limit of at least 20), and
        /// DKIM with DMARC at the end of data: a sender whose DNS answers slowly gets a
        /// temporary error, not a session held for minutes.
        public var timeLimit = 20

        public init() {}
    }

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

    public struct Limits: Sendable, Hashable {
        public var messageSize: Int = 26_214_400
        public var recipients: Int = 100
        public var connections: Int = 10_000
        public var connectionsPerIP: Int = 20
        public var errors: Int = 10
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
    }

    /// The embedded defaults `petrel serve` runs on without a configuration file.
    public static func defaults(hostname: String, workingDirectory: String) -> Configuration {
        Configuration(
            hostname: hostname,
            dataDirectory: joinPath(workingDirectory, "petrel-data"),
            domains: ["localhost"],
            postmaster: nil,
            recipientDelimiter: "+",
            listen: Listen(
                smtp: [ListenAddress(host: "127.0.0.1", port: 2525)],
                submission: [ListenAddress(host: "127.0.0.1", port: 2587)],
                submissions: [ListenAddress(host: "127.0.0.1", port: 2465)]
            ),
            tls: nil,
            limits: Limits(),
            timeouts: Timeouts(),
            authentication: AuthenticationPolicy(),
            dns: DNSSettings(),
            logLevel: .info
        )
    }

    /// This machine's host name, when it is a valid domain name; else "localhost".
    public static func machineHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Domain(name) == nil ? "localhost" : name
    }

    public var accountsPath: String { self.dataDirectory + "/accounts.sqlite" }
    public var tlsDirectory: String { self.dataDirectory + "/tls" }
    public var queueDirectory: String { self.dataDirectory + "/queue" }
    public var mailDirectory: String { self.dataDirectory + "/mail" }

    /// The resolver these settings describe: the configured servers, or /etc/resolv.conf's.
    public func makeDNSClient() -> DNSClient {
        let addresses: [SocketAddress]
        if let servers = self.dns.servers {
            addresses = servers.compactMap { try? SocketAddress(ipAddress: $0.host, port: $0.port) }
        } else {
            addresses = ResolvConf.load().addresses
        }
        return DNSClient(
            configuration: .init(servers: addresses, timeout: .seconds(self.dns.timeout), attempts: self.dns.attempts)
        )
    }

    public var recipientResolver: RecipientResolver {
        RecipientResolver(
            domains: self.domains,
            postmaster: self.postmaster,
            recipientDelimiter: self.recipientDelimiter
        )
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

/// `path` if absolute, else `base/path`.
public func joinPath(_ base: String, _ path: String) -> String {
    if path.hasPrefix("/") { return path }
    if base.hasSuffix("/") { return base + path }
    return base + "/" + path
}
