import ArgumentParser
import MailAuth
import PetrelOperator
import PetrelServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
            let configuration = try self.options.load()
            guard let kind = DKIMPrivateKey.Kind(rawValue: self.algorithm) else {
                throw ValidationError("--algorithm is rsa or ed25519, not '\(self.algorithm)'")
            }
            guard DKIMSignature.isDomainName(self.domain.asciiLowercased) else {
                throw ValidationError("'\(self.domain)' is not a domain name")
            }
            let store = DKIMKeyStore(dataDirectory: configuration.dataDirectory)
            let key = try DKIMPrivateKey.generate(kind)
            do {
                try store.add(key, domain: self.domain, selector: self.selector)
            } catch {
                printError(error.description)
                throw ExitCode(1)
            }
            print("; wrote \(store.path(domain: self.domain, selector: self.selector)); publish:")
            print(DKIM.zoneLine(domain: self.domain, selector: self.selector, key: key))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the DNS record of every key of a domain.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The domain.") var domain: String

        func run() throws {
            let signers = try DKIM.signers(self.options, domain: self.domain)
            if signers.isEmpty { print("; no DKIM key for \(self.domain): petrel dkim keygen \(self.domain)") }
            for signer in signers {
                print(DKIM.zoneLine(domain: signer.domain, selector: signer.selector, key: signer.key))
            }
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
            let signers = try DKIM.signers(self.options, domain: self.domain)
            guard !signers.isEmpty else {
                printError("no DKIM key for \(self.domain): make one with petrel dkim keygen \(self.domain)")
                throw ExitCode(1)
            }
            var message: [UInt8] = []
            readStandardInput { message += $0 }
            var output = ""
            let now = Int(time(nil))
            for signer in signers { output = try signer.signatureField(for: message, timestamp: now) + output }
            let bytes = Array(output.utf8) + message
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        }
    }

    /// The domain's keys; exit status 1 with the reason when one cannot be read.
    static func signers(_ options: ConfigOption, domain: String) throws -> [DKIMSigner] {
        let configuration = try options.load()
        do {
            return try DKIMKeyStore(dataDirectory: configuration.dataDirectory).signers(for: domain)
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }

    /// `sel._domainkey.example.com. IN TXT ( "v=DKIM1; ..." "..." )`, strings of at most 255.
    static func zoneLine(domain: String, selector: String, key: DKIMPrivateKey) -> String {
        var record = Array(key.record.utf8)[...]
        var strings: [String] = []
        while !record.isEmpty {
            strings.append("\"" + String(decoding: record.prefix(250), as: UTF8.self) + "\"")
            record = record.dropFirst(250)
        }
        return "\(selector)._domainkey.\(domain.asciiLowercased). IN TXT ( " + strings.joined(separator: " ") + " )"
    }
}
