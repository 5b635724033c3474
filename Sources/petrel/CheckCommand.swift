import ArgumentParser
import PetrelOperator

/// `petrel check spf|dkim|dmarc`: the inbound checks, run by hand, with the reasons.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run SPF, DKIM or DMARC checks by hand, as the server does for incoming mail.",
        discussion: """
            Each prints one line per identity or signature with its result and the reason (which \
            mechanism matched, which tag was wrong). The exit status is 0 whatever the results; \
            64 for a bad argument, 2 when no DNS server can be reached.
            """,
        subcommands: [SPF.self, DKIM.self, DMARC.self]
    )

    /// `--dns` and `--config`, shared by the three.
    struct DNSOption: ParsableArguments {
        @OptionGroup var options: ConfigOption
        @Option(help: ArgumentHelp("Ask this resolver instead of the configured ones.", valueName: "host:port"))
        var dns: String?
    }

    /// `--ip`, `--sender`, `--helo`.
    struct Envelope: ParsableArguments {
        @Option(help: ArgumentHelp("The client's IP address.", valueName: "ip"))
        var ip: String
        @Option(help: ArgumentHelp("The MAIL FROM address; \"\" for the null sender <>.", valueName: "address"))
        var sender: String
        @Option(help: ArgumentHelp("The name the client gave in EHLO/HELO.", valueName: "name"))
        var helo: String

        var value: CheckTool.Envelope { CheckTool.Envelope(ip: self.ip, sender: self.sender, helo: self.helo) }
    }

    struct SPF: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check SPF (RFC 7208) for the MAIL FROM and HELO identities."
        )
        @OptionGroup var dns: DNSOption
        @OptionGroup var envelope: Envelope

        func run() async throws {
            try await tool {
                try await CheckTool.spf(
                    try self.dns.options.load(),
                    dnsServer: self.dns.dns,
                    envelope: self.envelope.value
                )
            }
        }
    }

    struct DKIM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the DKIM signatures of a message read from standard input."
        )
        @OptionGroup var dns: DNSOption

        func run() async throws {
            try await tool { try await CheckTool.dkim(try self.dns.options.load(), dnsServer: self.dns.dns) }
        }
    }

    struct DMARC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run SPF, DKIM and DMARC on a message read from standard input.",
            discussion: """
                Prints each result, what the server would do with the message under the [inbound] \
                settings, and the Authentication-Results field it would add.
                """
        )
        @OptionGroup var dns: DNSOption
        @OptionGroup var envelope: Envelope

        func run() async throws {
            try await tool {
                try await CheckTool.dmarc(
                    try self.dns.options.load(),
                    dnsServer: self.dns.dns,
                    envelope: self.envelope.value
                )
            }
        }
    }
}
