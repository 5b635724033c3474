import ArgumentParser
import Logging
import PetrelConfiguration
import PetrelOperator
import PetrelServer

@main
struct Petrel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel",
        abstract: "A mail server: receives mail for your domains into Maildirs, and delivers your users' mail.",
        discussion: """
            Without --config, petrel runs on embedded defaults: data in ./petrel-data, mail for \
            'localhost' (postmaster@localhost), SMTP on 127.0.0.1:2525. For a real domain, start \
            with `petrel init` (docs/setup.md).
            Configuration reference: docs/configuration.md; every command: docs/commands.md.
            """,
        subcommands: [
            Init.self, Serve.self, User.self, Alias.self, Queue.self, Sendmail.self, DKIM.self, DNSRecordsCommand.self,
            DoctorCommand.self,
            Resolve.self, Check.self,
        ]
    )

    /// Every file and directory Petrel makes is its own, before any command runs
    /// (`SecretFile.ownerOnlyFromNowOn`).
    static func main() async {
        SecretFile.ownerOnlyFromNowOn()
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

    /// - Parameter warn: print the deprecated keys the file uses (the server logs them instead).
    func load(warn: Bool = true) throws -> Configuration {
        let hostname = Configuration.machineHostname()
        guard let path = self.config else {
            return Configuration.defaults(hostname: hostname, workingDirectory: currentDirectory())
        }
        let configuration = try ConfigurationLoader.load(path: path, hostname: hostname)
        if warn {
            for deprecation in configuration.deprecations { printWarning("\(path): \(deprecation)") }
        }
        return configuration
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
        let configuration = try self.options.load(warn: false)
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
        subcommands: [Add.self, Password.self, List.self, Remove.self, Sender.self, Quota.self, IMAP.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a mailbox.")

        @OptionGroup var options: ConfigOption
        @Argument(help: "The address, e.g. alice@example.com; its domain must be in 'domains'.")
        var address: String
        @Flag(help: "Read a password from standard input, for SMTP AUTH (one line; its line break is not part of it).")
        var passwordStdin = false

        func run() async throws {
            try AccountTool(configuration: try self.options.load())
                .addMailbox(self.address, passwordFromStandardInput: self.passwordStdin)
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
            try AccountTool(configuration: try self.options.load()).setPassword(self.address)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List mailboxes.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            try AccountTool(configuration: try self.options.load()).listMailboxes()
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
            try AccountTool(configuration: try self.options.load()).removeMailbox(self.address)
        }
    }
}

extension User {
    struct Quota: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set what a mailbox may hold.",
            discussion: """
                Without a size, shows the mailbox's quota and what it holds (all folders, as on \
                disk). A size sets its own quota: 5G, 512M, 1073741824 (octets; binary units); \
                "none" for no limit; "default" for quota.storage of the configuration. A full \
                mailbox gets no more mail: SMTP answers 452 4.2.2 at RCPT TO (the sender tries \
                again later) and IMAP APPEND and COPY get NO [OVERQUOTA].
                """
        )

        @OptionGroup var options: ConfigOption
        @Argument(help: "The mailbox address.")
        var address: String
        @Argument(help: "The new quota: a size, none, or default.")
        var size: String?

        func run() async throws {
            try AccountTool(configuration: try self.options.load()).quota(self.address, set: self.size)
        }
    }

    struct IMAP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or switch off IMAP capabilities for one user's mail programs.",
            discussion: """
                For a mail program that misbehaves with an extension: a capability switched off \
                is not announced to the user after login and cannot be enabled. Without options, \
                shows what is switched off. Takes effect at the user's next login.
                """
        )

        @OptionGroup var options: ConfigOption
        @Argument(help: "The mailbox address.")
        var address: String
        @Option(
            name: .customLong("disable"),
            help: ArgumentHelp("A capability to switch off (QRESYNC, COMPRESS=DEFLATE, ...).", valueName: "capability")
        )
        var disable: [String] = []
        @Option(
            name: .customLong("enable"),
            help: ArgumentHelp("A capability to offer again.", valueName: "capability")
        )
        var enable: [String] = []

        func run() async throws {
            try AccountTool(configuration: try self.options.load())
                .imapSwitches(self.address, disable: self.disable, enable: self.enable)
        }
    }

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
                try AccountTool(configuration: try self.options.load()).addSenderAddress(self.address, for: self.user)
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
                try AccountTool(configuration: try self.options.load())
                    .removeSenderAddress(self.address, for: self.user)
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a user's sender addresses.")

            @OptionGroup var options: ConfigOption
            @Argument(help: "The user's mailbox address.")
            var user: String

            func run() async throws {
                try AccountTool(configuration: try self.options.load()).listSenderAddresses(for: self.user)
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
            try await AccountTool(configuration: try self.options.load()).addAlias(self.alias, targets: self.targets)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List aliases.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            try AccountTool(configuration: try self.options.load()).listAliases()
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an alias.")

        @OptionGroup var options: ConfigOption
        @Argument(help: "The alias to remove.")
        var alias: String

        func run() async throws {
            try AccountTool(configuration: try self.options.load()).removeAlias(self.alias)
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
        try await tool {
            try await ResolveTool.lookUp(try self.options.load(), type: self.type, name: self.name, server: self.server)
        }
    }
}

/// Runs a tool of PetrelOperator, turning its failures into the command line's: a usage error
/// with the usage, an exit status as it is.
func tool(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ToolExit {
        throw ExitCode(exit.status)
    } catch let usage as ToolUsageError {
        throw ValidationError(usage.description)
    }
}

/// `tool`, for the commands that are not async.
func syncTool(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ToolExit {
        throw ExitCode(exit.status)
    } catch let usage as ToolUsageError {
        throw ValidationError(usage.description)
    }
}
