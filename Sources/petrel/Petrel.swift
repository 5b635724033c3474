import Accounts
import ArgumentParser
import DNSClient
import DNSCore
import Logging
import MailCore
import MailStore
import NIOCore
import PetrelConfiguration
import PetrelOperator
import PetrelServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct Petrel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel",
        abstract: "A mail server: receives mail for your domains into Maildirs, and delivers your users' mail.",
        discussion: """
            Without --config, petrel runs on embedded defaults: data in ./petrel-data, mail for \
            'localhost' (postmaster@localhost), SMTP on 127.0.0.1:2525. For a real domain, start \
            with `petrel init` (docs/setup.md).
            Configuration reference: README.md, section "Configuration".
            """,
        subcommands: [
            Init.self, Serve.self, User.self, Alias.self, Queue.self, Sendmail.self, DKIM.self, DNSRecordsCommand.self,
            DoctorCommand.self,
            Resolve.self, Check.self,
        ]
    )

    /// Every file and directory Petrel makes is its own (accounts with password hashes and SCRAM
    /// keys, private keys, mail): umask 077 before any command runs, so none is ever made readable
    /// by others, whatever umask it was started with. The files holding secrets are also made
    /// with mode 0600 explicitly, and an existing data directory open to others gets a warning.
    static func main() async {
        umask(0o077)
        await Self.main(nil)
    }
}

/// `--config FILE`, shared by every command.
struct ConfigOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("TOML configuration file. Without it, the embedded defaults apply.", valueName: "file")
    )
    var config: String?

    func load() throws -> Configuration {
        let hostname = Configuration.machineHostname()
        guard let path = self.config else {
            return Configuration.defaults(hostname: hostname, workingDirectory: currentDirectory())
        }
        return try ConfigurationLoader.load(path: path, hostname: hostname)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the mail server.",
        discussion: """
            Listens on the configured addresses until SIGTERM or SIGINT, then stops accepting \
            connections, lets open sessions finish (timeouts.shutdown seconds at most) and exits 0.
            """
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try self.options.load()
        let level = configuration.logLevel
        let format = configuration.logFormat
        LoggingSystem.bootstrap { label in LogfmtHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "petrel")
        if self.options.config == nil {
            logger.notice(
                "no --config given: running on the embedded defaults",
                metadata: ["data_dir": "\(configuration.dataDirectory)", "hostname": "\(configuration.hostname)"]
            )
        }
        let server = try await PetrelServer.start(configuration: configuration, logger: logger)
        try await server.run()
    }
}

struct User: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage mailboxes.",
        discussion: "Changes apply to a running server at once; no restart is needed.",
        subcommands: [Add.self, Password.self, List.self, Remove.self, Sender.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a mailbox.")

        @OptionGroup var options: ConfigOption
        @Argument(help: "The address, e.g. alice@example.com; its domain must be in 'domains'.")
        var address: String
        @Flag(help: "Read a password from standard input, for SMTP AUTH (one line; its line break is not part of it).")
        var passwordStdin = false

        func run() async throws {
            let configuration = try self.options.load()
            let address = try servedAddress(self.address, configuration)
            let password = self.passwordStdin ? try readNewPassword() : nil
            try openAccounts(configuration).addMailbox(address, password: password)
            print("added mailbox \(address); mail goes to \(configuration.mailDirectory)/\(address)/")
        }
    }

    struct Password: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or change a mailbox's password, read from standard input.",
            discussion: "One line is read; its line break is not part of the password."
        )

        @OptionGroup var options: ConfigOption
        @Argument(help: "The mailbox address.")
        var address: String

        func run() async throws {
            let configuration = try self.options.load()
            let address = try AccountAddress(validating: self.address)
            try openAccounts(configuration).setPassword(try readNewPassword(), for: address)
            print("password set for \(address)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List mailboxes.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try self.options.load()
            for mailbox in try openAccounts(configuration).mailboxes() {
                print("\(mailbox.address)\(mailbox.hasPassword ? "" : "\t(no password)")")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a mailbox. Its stored mail is kept on disk."
        )

        @OptionGroup var options: ConfigOption
        @Argument(help: "The address to remove.")
        var address: String

        func run() async throws {
            let configuration = try self.options.load()
            let address = try AccountAddress(validating: self.address)
            let referring = try openAccounts(configuration).removeMailbox(address)
            print("removed mailbox \(address); its mail stays in \(configuration.mailDirectory)/\(address)/")
            if !referring.isEmpty {
                print("note: these aliases still name it: \(referring.map(\.description).joined(separator: ", "))")
            }
        }
    }
}

extension User {
    /// The addresses a mailbox may send as besides its own (kept in the account store, so a
    /// running server sees a change at once).
    struct Sender: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the addresses a user may send as, besides their own.",
            discussion: """
                A logged-in user may use as MAIL FROM, and in the From and Sender fields of what \
                they submit, their own address, a subaddress of it (alice+tag@), an alias that \
                reaches them, and the addresses added here: a role address (info@example.com) \
                or "@example.com" for every address of a domain. Anything else is refused \
                (553 at MAIL FROM, 550 5.7.1 at the end of data), so that what Petrel signs \
                with a domain's DKIM key was written by someone who may speak for it.
                """,
            subcommands: [Add.self, Remove.self, List.self]
        )

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Let a user send as an address or a domain.")

            @OptionGroup var options: ConfigOption
            @Argument(help: "The user's mailbox address.")
            var user: String
            @Argument(help: "An address (info@example.com), or @example.com for a whole domain.")
            var address: String

            func run() async throws {
                let configuration = try self.options.load()
                let user = try AccountAddress(validating: self.user)
                let address = try SenderAddress(validating: self.address)
                try openAccounts(configuration).addSenderAddress(address, for: user)
                print("\(user) may send as \(address)")
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Take a sender address back.")

            @OptionGroup var options: ConfigOption
            @Argument(help: "The user's mailbox address.")
            var user: String
            @Argument(help: "The address or @domain to remove.")
            var address: String

            func run() async throws {
                let configuration = try self.options.load()
                let user = try AccountAddress(validating: self.user)
                let address = try SenderAddress(validating: self.address)
                try openAccounts(configuration).removeSenderAddress(address, for: user)
                print("\(user) may no longer send as \(address)")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a user's sender addresses.")

            @OptionGroup var options: ConfigOption
            @Argument(help: "The user's mailbox address.")
            var user: String

            func run() async throws {
                let configuration = try self.options.load()
                let user = try AccountAddress(validating: self.user)
                for address in try openAccounts(configuration).listSenderAddresses(for: user) {
                    print(address)
                }
            }
        }
    }
}

struct Alias: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage aliases: addresses whose mail goes to other local addresses.",
        discussion: "Changes apply to a running server at once; no restart is needed.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an alias.")

        @OptionGroup var options: ConfigOption
        @Argument(help: "The alias address, e.g. info@example.com.")
        var alias: String
        @Argument(help: "Where its mail goes: existing mailboxes or aliases of this server.")
        var targets: [String]

        func run() async throws {
            let configuration = try self.options.load()
            guard !self.targets.isEmpty else { throw CLIError("name at least one target address") }
            let alias = try servedAddress(self.alias, configuration)
            let accounts = try openAccounts(configuration)
            let resolver = configuration.recipientResolver
            var targets: [AccountAddress] = []
            for text in self.targets {
                let target = try AccountAddress(validating: text)
                guard configuration.domains.contains(target.domain) else {
                    throw AccountError.invalidAliasTarget(
                        text,
                        "\(target.domain) is not one of this server's domains; forwarding to other servers is not supported yet"
                    )
                }
                guard target != alias else {
                    throw AccountError.invalidAliasTarget(text, "an alias cannot point at itself")
                }
                guard case .mailboxes = try await accounts.resolve(.mailbox(target.mailbox), with: resolver) else {
                    throw AccountError.invalidAliasTarget(text, "no mailbox or alias of that name; add it first")
                }
                if !targets.contains(target) { targets.append(target) }
            }
            try accounts.addAlias(alias, targets: targets)
            print("added alias \(alias) -> \(targets.map(\.description).joined(separator: ", "))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List aliases.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try self.options.load()
            for alias in try openAccounts(configuration).aliases() {
                print("\(alias.address) -> \(alias.targets.map(\.description).joined(separator: ", "))")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an alias.")

        @OptionGroup var options: ConfigOption
        @Argument(help: "The alias to remove.")
        var alias: String

        func run() async throws {
            let configuration = try self.options.load()
            let alias = try AccountAddress(validating: self.alias)
            try openAccounts(configuration).removeAlias(alias)
            print("removed alias \(alias)")
        }
    }
}

struct Resolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look a name up with Petrel's own resolver.",
        discussion: """
            Prints each record with its TTL, as dig +noall +answer does, then the status and whether \
            the resolver set AD (DNSSEC-validated). Exit status: 0 with an answer, 1 for NXDOMAIN or \
            no data, 2 when the lookup failed (SERVFAIL, REFUSED, timeout).
            """
    )

    @OptionGroup var options: ConfigOption
    @Argument(help: "A record type: A, AAAA, MX, TXT, PTR, CNAME, SRV, TLSA, SOA, NS, or TYPEnn.")
    var type: String
    @Argument(help: "The name to look up; for PTR, an IP address works too.")
    var name: String
    @Option(help: ArgumentHelp("Ask this resolver instead of the configured ones.", valueName: "host:port"))
    var server: String?

    func run() async throws {
        let configuration = try self.options.load()
        guard let type = DNSRecordType(self.type) else { throw ValidationError("unknown record type '\(self.type)'") }
        var name = DNSName(self.name)
        if type == .ptr, let address = try? SocketAddress(ipAddress: self.name, port: 0) {
            name = DNSName.reverse(address: addressOctets(address))
        }
        guard let name else { throw ValidationError("'\(self.name)' is not a domain name") }
        let client = try makeResolver(configuration, server: self.server, option: "--server")
        let result = await client.lookup(name, type)
        for record in result.cnames + result.records { print(record.presentation) }
        let authenticated = result.authenticated ? "yes" : "no"
        switch result.status {
        case .answer:
            let count = result.records.count
            print(";; status: NOERROR, \(count) record\(count == 1 ? "" : "s"); AD: \(authenticated)")
        case .noData:
            print(";; status: NOERROR, no \(type) records; AD: \(authenticated)")
            throw ExitCode(1)
        case .nxDomain:
            print(";; status: NXDOMAIN; AD: \(authenticated)")
            throw ExitCode(1)
        case .failure(let failure):
            print(";; status: \(failure)")
            throw ExitCode(2)
        }
    }
}

/// Petrel's resolver as configured, or asking only `server` (given with `option`); exit status 2
/// when there is no server to ask at all.
func makeResolver(_ configuration: Configuration, server: String?, option: String) throws -> DNSClient {
    var configuration = configuration
    if let server {
        guard let address = ListenAddress(parsing: server, defaultPort: 53),
            (try? SocketAddress(ipAddress: address.host, port: address.port)) != nil
        else { throw ValidationError("\(option) takes an IP address and port, like 127.0.0.1:53 or [::1]:5353") }
        configuration.dns.servers = [address]
    }
    let client = configuration.makeDNSClient()
    guard !client.configuration.servers.isEmpty else {
        printError("no DNS server: give \(option), set [dns] servers, or add a nameserver to /etc/resolv.conf")
        throw ExitCode(2)
    }
    return client
}

/// Standard input in pieces of up to 64 KiB, a file saved with LF line ends (a Maildir file) read
/// as CRLF, as the message was or will be on the wire.
func readStandardInput(_ body: ([UInt8]) -> Void) {
    var buffer = [UInt8](repeating: 0, count: 65_536)
    var previous: UInt8 = 0
    while true {
        let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(count + count / 32)
        for byte in buffer[0..<count] {
            if byte == 0x0A, previous != 0x0D { chunk.append(0x0D) }
            chunk.append(byte)
            previous = byte
        }
        body(chunk)
    }
}

func printError(_ message: String) {
    let line = Array("Error: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func addressOctets(_ address: SocketAddress) -> [UInt8] {
    switch address {
    case .v4(let v4): return withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
    case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
    default: return []
    }
}

/// 45s, 12m, 3h, 2d.
func formatAge(_ seconds: Int64) -> String {
    switch seconds {
    case ..<60: return "\(max(seconds, 0))s"
    case ..<3600: return "\(seconds / 60)m"
    case ..<86_400: return "\(seconds / 3600)h"
    default: return "\(seconds / 86_400)d"
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Validates an address and checks that its domain is one we serve.
func servedAddress(_ text: String, _ configuration: Configuration) throws -> AccountAddress {
    let address = try AccountAddress(validating: text)
    guard configuration.domains.contains(address.domain) else {
        throw AccountError.domainNotServed(address.domain, served: configuration.domains)
    }
    return address
}

func openAccounts(_ configuration: Configuration) throws -> AccountStore {
    try createDirectories(configuration.dataDirectory)
    return try AccountStore(path: configuration.accountsPath)
}

/// A password from standard input, hashed for storage (yescrypt and SCRAM-SHA-256).
func readNewPassword() throws -> PasswordCredentials {
    let password = readPasswordFromStandardInput()
    guard !password.isEmpty else { throw CLIError("the password read from standard input is empty") }
    return try PasswordCredentials.make(password: password)
}

/// The first line of standard input, without its line break.
func readPasswordFromStandardInput() -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while true {
        let count = read(STDIN_FILENO, &byte, 1)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 || byte == 0x0A { break }
        bytes.append(byte)
    }
    if bytes.last == 0x0D { bytes.removeLast() }
    return String(decoding: bytes, as: UTF8.self)
}

func currentDirectory() -> String {
    guard let path = getcwd(nil, 0) else { return "." }
    defer { free(path) }
    return String(cString: path)
}
