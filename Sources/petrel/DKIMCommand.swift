import ArgumentParser
import PetrelOperator

/// `petrel dkim keygen|list|sign`: the keys outbound mail is signed with.
struct DKIM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dkim",
        abstract: "Manage the DKIM keys outbound mail is signed with.",
        discussion: """
            Keys live in DATA_DIR/dkim/DOMAIN/SELECTOR.pem (PKCS#8, mode 0600). Every key of a \
            domain signs its mail; publish each key's TXT record before the key is used.
            """,
        subcommands: [Keygen.self, List.self, Sign.self]
    )

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a DKIM key for a domain and print the DNS record to publish."
        )
        @OptionGroup var options: ConfigOption
        @Argument(help: "The domain that signs (d=).") var domain: String
        @Option(help: "The selector (s=): the key's name in DNS, SELECTOR._domainkey.DOMAIN.")
        var selector = "petrel"
        @Option(help: "rsa (2048 bits, understood everywhere) or ed25519 (RFC 8463, as a second signature).")
        var algorithm = "rsa"

        func run() throws {
            try syncTool {
                try DKIMTool.makeKey(
                    try self.options.load(),
                    domain: self.domain,
                    selector: self.selector,
                    algorithm: self.algorithm
                )
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the DNS record of every key of a domain.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The domain.") var domain: String

        func run() throws {
            try syncTool { try DKIMTool.list(try self.options.load(), domain: self.domain) }
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a message from standard input with a domain's keys, as outbound mail is.",
            discussion: "Prints the message with its DKIM-Signature fields on top (CRLF line ends)."
        )
        @OptionGroup var options: ConfigOption
        @Option(help: "The signing domain (d=).") var domain: String

        func run() throws {
            try syncTool { try DKIMTool.sign(try self.options.load(), domain: self.domain) }
        }
    }
}
