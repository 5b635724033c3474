import Accounts
import Foundation
import Logging
import MailAuth
import MailCore
import MailStore
import PetrelConfiguration

/// `petrel init`: a configuration file for production, the data directory, a DKIM key, the
/// postmaster's mailbox and a self-signed certificate, refusing to overwrite anything unless
/// told to.
public struct Setup: Sendable {
    public var domains: [String]
    public var hostname: String
    public var addresses: [IPAddress]
    public var dataDirectory: String
    public var configurationPath: String
    public var force = false

    public init(
        domains: [String],
        hostname: String,
        addresses: [IPAddress],
        dataDirectory: String,
        configurationPath: String
    ) {
        self.domains = domains
        self.hostname = hostname
        self.addresses = addresses
        self.dataDirectory = dataDirectory
        self.configurationPath = configurationPath
    }

    /// `--ip` and `--ipv6` as addresses; a usage error names the first that is not one.
    public static func addresses(ipv4: [String], ipv6: [String]) throws -> [IPAddress] {
        for text in ipv4 where IPAddress(text)?.isIPv4 != true {
            throw ToolUsageError("--ip '\(text)' is not an IPv4 address")
        }
        for text in ipv6 where IPAddress(text).map({ !$0.isIPv4 }) != true {
            throw ToolUsageError("--ipv6 '\(text)' is not an IPv6 address")
        }
        return (ipv4 + ipv6).compactMap { IPAddress($0) }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// What was made.
    public struct Result: Sendable {
        public var configuration: Configuration
        public var postmaster: String
        /// Shown once: stored only as hashes.
        public var postmasterPassword: String?
        public var dkimKeys: [String]
        public var certificate: String
    }

    public func run() throws -> Result {
        guard !self.domains.isEmpty else { throw Failure(description: "name at least one --domain") }
        for domain in self.domains where Domain(domain) == nil || domain.contains("..") {
            throw Failure(description: "'\(domain)' is not a domain name")
        }
        guard Domain(self.hostname) != nil, self.hostname.contains(".") else {
            throw Failure(description: "'\(self.hostname)' is not a fully qualified host name (mail.example.com)")
        }
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: self.configurationPath), !self.force {
            throw Failure(description: "\(self.configurationPath) exists; use --force to replace it")
        }
        let accounts = DataDirectory(self.dataDirectory).accounts
        if fileManager.fileExists(atPath: accounts), !self.force {
            throw Failure(
                description:
                    "\(self.dataDirectory) already holds accounts; use --force to set it up again (nothing in it is deleted)"
            )
        }
        // The file first: it is what `--config` will read, and it must load.
        let text = self.configurationText
        let configuration: Configuration
        do {
            configuration = try ConfigurationLoader.parse(
                text,
                source: self.configurationPath,
                baseDirectory: "/",
                hostname: self.hostname
            )
        } catch {
            throw Failure(description: "the configuration written would not load: \(error)")
        }
        do {
            let directory = (self.configurationPath as NSString).deletingLastPathComponent
            if !directory.isEmpty { try createDirectories(directory) }
            try createDirectories(self.dataDirectory)
            // It may hold a relay password: readable by its owner only, from the start.
            try SecretFile.write(text, to: self.configurationPath)
        } catch {
            throw Failure(description: "cannot write \(self.configurationPath): \(error)")
        }

        // A DKIM key per domain (kept when there is one: keys are never replaced).
        let store = DKIMKeyStore(dataDirectory: self.dataDirectory)
        var keys: [String] = []
        for domain in configuration.domains {
            if let existing = try store.signers(for: domain).first {
                keys.append(store.path(domain: domain, selector: existing.selector))
                continue
            }
            let key = try DKIMPrivateKey.generate(.rsa)
            try store.add(key, domain: domain, selector: Self.selector)
            keys.append(store.path(domain: domain, selector: Self.selector))
        }

        // The postmaster's mailbox, with a password to read it with.
        let postmaster = try AccountAddress(validating: "postmaster@\(configuration.domains[0])")
        let accountStore = try AccountStore(path: configuration.files.accounts)
        let password = Self.password()
        let credentials = try PasswordCredentials.make(password: password)
        if try accountStore.mailboxes().contains(where: { $0.address == postmaster }) {
            try accountStore.setPassword(credentials, for: postmaster)
        } else {
            try accountStore.addMailbox(postmaster, password: credentials)
        }

        // Until a real certificate is configured.
        var logger = Logger(label: "petrel-init")
        logger.logLevel = .critical
        let files = try ServerCertificate.files(for: configuration, logger: logger)
        return Result(
            configuration: configuration,
            postmaster: postmaster.description,
            postmasterPassword: password,
            dkimKeys: keys,
            certificate: files.certificate
        )
    }

    static let selector = "petrel"

    /// 20 characters from an alphabet without look-alikes: about 110 bits.
    static func password() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// The commented production configuration.
    var configurationText: String {
        func list(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let hasIPv6 = self.addresses.contains { !$0.isIPv4 }
        func listeners(_ port: Int) -> String {
            list(["0.0.0.0:\(port)"] + (hasIPv6 ? ["[::]:\(port)"] : []))
        }
        return """
            # Petrel, set up by `petrel init`. Every key is explained in docs/configuration.md;
            # docs/setup.md walks from here to a working domain.

            # Our name: in the greeting, EHLO and Received:, and the MX target of every domain.
            hostname = "\(self.hostname)"
            # Accounts, Maildirs (mail/ADDRESS/), the queue, DKIM keys (dkim/) and certificates (tls/).
            data_dir = "\(self.dataDirectory)"
            # The domains mail is received for; the first is the primary one.
            domains = \(list(self.domains))
            # Where postmaster@ every domain goes, and DMARC and TLS reports.
            postmaster = "postmaster@\(self.domains[0])"
            # This host's public addresses: the A/AAAA, SPF and PTR records of `petrel dns`,
            # and what `petrel doctor` expects DNS to say.
            addresses = \(list(self.addresses.map(\.description)))

            [listen]
            # Mail from other servers (STARTTLS offered).
            smtp = \(listeners(25))
            # Your users' mail programs: STARTTLS then AUTH (587), implicit TLS (465).
            submission = \(listeners(587))
            submissions = \(listeners(465))
            # Reading mail (docs/imap.md): STARTTLS then login (143), implicit TLS (993).
            imap = \(listeners(143))
            imaps = \(listeners(993))

            # A self-signed certificate is made under data_dir/tls/ until you name a real one,
            # for example from Let's Encrypt (SIGHUP reloads it after renewal):
            # [tls]
            # certificate = "/etc/letsencrypt/live/\(self.hostname)/fullchain.pem"
            # key = "/etc/letsencrypt/live/\(self.hostname)/privkey.pem"

            # Outbound delivery: retries back off from retry_first to retry_max seconds; mail is
            # returned to its sender after max_age. Uncomment [relay] to send through a smarthost.
            [delivery]
            retry_first = 300
            retry_max = 3600
            max_age = 432000
            # delay_notice = 14400
            # [relay]
            # host = "smtp.provider.example:587"
            # username = "you@provider.example"
            # password = "..."

            [log]
            level = "info"

            """
    }
}
