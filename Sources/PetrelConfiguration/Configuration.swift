import Accounts
import Logging
import MailCore
import PetrelSystem

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
    /// IMAP's limits (`[imap]`).
    public var imap = IMAP()
    /// Mailbox quotas (`[quota]`).
    public var quota = Quota()
    /// What failed logins cost (`[auth]`).
    public var loginFailures: LoginFailurePolicy
    /// SPF, DKIM and DMARC on mail from other servers (`[inbound]`).
    public var inbound = InboundPolicy()
    public var dns: DNSSettings
    public var logLevel: Logger.Level
    public var logFormat = LogFormat.text
    /// The public addresses mail for `hostname` arrives at (`addresses`): the A, AAAA, SPF and
    /// PTR records of `petrel dns`, and what `petrel doctor` expects DNS to say.
    public var publicAddresses: [IPAddress] = []
    /// Outbound delivery (`[delivery]`).
    public var delivery = DeliveryPolicy()
    /// A smarthost for all outbound mail (`[relay]`); MX lookup when nil.
    public var relay: Relay?
    /// `[metrics] listen`: where Prometheus text is served; off when nil.
    public var metricsListen: ListenAddress?
    /// Keys given by an old name, each with what to write instead: the server logs them at
    /// start, the other commands print them.
    public var deprecations: [String] = []

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
                submissions: [ListenAddress(host: "127.0.0.1", port: 2465)],
                imap: [ListenAddress(host: "127.0.0.1", port: 2143)],
                imaps: [ListenAddress(host: "127.0.0.1", port: 2993)]
            ),
            tls: nil,
            limits: Limits(),
            timeouts: Timeouts(),
            loginFailures: LoginFailurePolicy(),
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
}

/// `path` if absolute, else `base/path`.
public func joinPath(_ base: String, _ path: String) -> String {
    if path.hasPrefix("/") { return path }
    if base.hasSuffix("/") { return base + path }
    return base + "/" + path
}

/// `[log] format`: logfmt text, or one JSON object per line for log collectors.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

extension Configuration {
    /// The keys outside any table.
    mutating func readTopLevel(_ top: inout TableReader, baseDirectory: String) throws(ConfigurationError) {
        if let name = try top.string("hostname") {
            guard Domain(name) != nil else {
                throw top.error(
                    "hostname",
                    "'\(name)' is not a valid host name; use a fully qualified name like mx.example.com"
                )
            }
            self.hostname = name
        }
        if let directory = try top.string("data_dir") {
            guard !directory.isEmpty else { throw top.error("data_dir", "must not be empty") }
            self.dataDirectory = joinPath(baseDirectory, directory)
        }
        if let domains = try top.stringArray("domains") {
            guard !domains.isEmpty else { throw top.error("domains", "name at least one domain to receive mail for") }
            var canonical: [String] = []
            for name in domains {
                guard let domain = Domain(name), domain.isASCII else {
                    throw top.error("domains", "'\(name)' is not a valid domain name")
                }
                if !canonical.contains(domain.canonical) { canonical.append(domain.canonical) }
            }
            self.domains = canonical
        }
        if let postmaster = try top.string("postmaster") {
            let address: AccountAddress
            do {
                address = try AccountAddress(validating: postmaster)
            } catch {
                throw top.error("postmaster", "\(error)")
            }
            guard self.domains.contains(address.domain) else {
                throw top.error(
                    "postmaster",
                    "\(address) is not in one of the domains (\(self.domains.joined(separator: ", ")))"
                )
            }
            self.postmaster = address
        }
        if let addresses = try top.stringArray("addresses") {
            var parsed: [IPAddress] = []
            for text in addresses {
                guard let address = IPAddress(text) else {
                    throw top.error("addresses", "'\(text)' is not an IPv4 or IPv6 address")
                }
                if !parsed.contains(address) { parsed.append(address) }
            }
            self.publicAddresses = parsed
        }
        if let delimiter = try top.string("recipient_delimiter") {
            switch delimiter.count {
            case 0:
                self.recipientDelimiter = nil
            case 1 where "+-_=~#".contains(delimiter):
                self.recipientDelimiter = delimiter.first
            default:
                throw top.error("recipient_delimiter", "must be one of + - _ = ~ #, or \"\" to turn subaddressing off")
            }
        }
    }

    /// `[metrics]`
    mutating func readMetrics(_ table: inout TableReader) throws(ConfigurationError) {
        if let text = try table.string("listen") {
            guard let address = ListenAddress(parsing: text) else {
                throw table.error("listen", "'\(text)' is not address:port (127.0.0.1:9464)")
            }
            self.metricsListen = address
        }
    }

    /// `[log]`
    mutating func readLog(_ table: inout TableReader) throws(ConfigurationError) {
        if let level = try table.string("level") {
            guard let parsed = Logger.Level(rawValue: level) else {
                let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw table.error("level", "'\(level)' is not a log level (\(names))")
            }
            self.logLevel = parsed
        }
        if let format = try table.choice("format", LogFormat.allCases.map(\.rawValue)) {
            self.logFormat = LogFormat(rawValue: format)!
        }
    }
}
