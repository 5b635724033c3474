import ArgumentParser
import DNSClient
import DNSCore
import MailAuth
import MailCore
import MailIntake
import NIOCore
import PetrelConfiguration
import PetrelServer
import SMTPCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

        func resolver() throws -> (DNSClient, Configuration) {
            let configuration = try self.options.load()
            return (try makeResolver(configuration, server: self.dns, option: "--dns"), configuration)
        }
    }

    /// `--ip`, `--sender`, `--helo`.
    struct Envelope: ParsableArguments {
        @Option(help: ArgumentHelp("The client's IP address.", valueName: "ip"))
        var ip: String
        @Option(help: ArgumentHelp("The MAIL FROM address; \"\" for the null sender <>.", valueName: "address"))
        var sender: String
        @Option(help: ArgumentHelp("The name the client gave in EHLO/HELO.", valueName: "name"))
        var helo: String

        func address() throws -> IPAddress {
            guard let address = IPAddress(self.ip) else { throw ValidationError("'\(self.ip)' is not an IP address") }
            return address
        }

        var mailFrom: String {
            var sender = self.sender
            if sender.hasPrefix("<"), sender.hasSuffix(">") { sender = String(sender.dropFirst().dropLast()) }
            return sender
        }
    }

    struct SPF: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check SPF (RFC 7208) for the MAIL FROM and HELO identities."
        )
        @OptionGroup var dns: DNSOption
        @OptionGroup var envelope: Envelope

        func run() async throws {
            let (resolver, configuration) = try self.dns.resolver()
            let verifier = SPFVerifier(resolver: resolver, receivingHost: configuration.hostname)
            let ip = try self.envelope.address()
            let now = Int(time(nil))
            if !self.envelope.mailFrom.isEmpty {
                let verdict = await verifier.check(
                    ip: ip,
                    mailFrom: self.envelope.mailFrom,
                    helo: self.envelope.helo,
                    timestamp: now
                )
                print(Check.line(verdict, identity: "mailfrom"))
            }
            let helo = await verifier.checkHELO(ip: ip, helo: self.envelope.helo, timestamp: now)
            print(Check.line(helo, identity: "helo"))
        }
    }

    struct DKIM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the DKIM signatures of a message read from standard input."
        )
        @OptionGroup var dns: DNSOption

        func run() async throws {
            let (resolver, _) = try self.dns.resolver()
            let scanned = Check.readMessage()
            let verdicts = await DKIMVerifier(resolver: resolver).verify(scanned)
            if verdicts.isEmpty { print("dkim: none (no DKIM-Signature field)") }
            for (index, verdict) in verdicts.enumerated() { print(Check.line(verdict, number: index + 1)) }
        }
    }

    struct DMARC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run SPF, DKIM and DMARC on a message read from standard input.",
            discussion: """
                Prints each result, what the server would do with the message under the [auth] \
                settings, and the Authentication-Results field it would add.
                """
        )
        @OptionGroup var dns: DNSOption
        @OptionGroup var envelope: Envelope

        func run() async throws {
            let (resolver, configuration) = try self.dns.resolver()
            let ip = try self.envelope.address()
            let scanned = Check.readMessage()
            let authentication = InboundAuthentication(
                policy: configuration.mailAuthentication,
                resolver: resolver,
                hostname: configuration.hostname
            )
            let heloIdentity = self.envelope.mailFrom.isEmpty
            let spf = await authentication.startSPF(
                client: ip,
                mailFrom: self.envelope.mailFrom,
                helo: self.envelope.helo,
                timestamp: Int(time(nil))
            ).value
            let outcome = await authentication.evaluate(spf: spf, heloIdentity: heloIdentity, message: scanned)
            if let spf { print(Check.line(spf, identity: heloIdentity ? "helo" : "mailfrom")) }
            if outcome.results.dkim.isEmpty { print("dkim: none (no DKIM-Signature field)") }
            for (index, verdict) in outcome.results.dkim.enumerated() { print(Check.line(verdict, number: index + 1)) }
            if let dmarc = outcome.results.dmarc {
                var line = "dmarc: \(dmarc.result.rawValue)"
                if !dmarc.authorDomains.isEmpty { line += " from=" + dmarc.authorDomains.joined(separator: ",") }
                if let policy = dmarc.policy { line += " policy=\(policy.rawValue)" }
                if let record = dmarc.policyRecord { line += " record=\(record)" }
                print(line + " (\(dmarc.reason))")
            }
            let problem = AuthorFields.problem(
                header: scanned.header ?? HeaderSection(fields: []),
                malformedLine: scanned.malformedLine
            )
            if let problem {
                // The server refuses such a message before DMARC has its say.
                print("action: refuse with \(Check.text(InboundAuthentication.refusal(for: problem)))")
            } else if let refusal = outcome.refusal {
                print("action: refuse with \(Check.text(refusal))")
            } else if let folder = outcome.folder {
                print("action: deliver into \(folder)")
            } else {
                print("action: deliver")
            }
            print(outcome.results.rendered, terminator: "")
        }
    }

    /// A reply as the client would read it: code, enhanced code, text.
    static func text(_ reply: SMTPReply) -> String {
        "\(reply.code) \(reply.enhancedCode.map { "\($0) " } ?? "")\(reply.lines.joined(separator: " "))"
    }

    static func line(_ verdict: SPFVerdict, identity: String) -> String {
        var line = "spf \(identity)=\(verdict.sender): \(verdict.result.rawValue) (\(verdict.reason))"
        if let explanation = verdict.explanation { line += " explanation: \(explanation)" }
        return line
    }

    static func line(_ verdict: DKIMVerdict, number: Int) -> String {
        var line = "dkim \(number): \(verdict.result.rawValue)"
        if let domain = verdict.domain { line += " d=\(domain)" }
        if let selector = verdict.selector { line += " s=\(selector)" }
        if let algorithm = verdict.algorithm { line += " a=\(algorithm.rawValue)" }
        if let length = verdict.bodyLength { line += " l=\(length)" }
        if verdict.testing { line += " t=y" }
        return line + " (\(verdict.reason))"
    }

    /// Reads standard input through the scanner, 64 KiB at a time.
    static func readMessage() -> MessageScanner.Scanned {
        var scanner = MessageScanner(now: Int(time(nil)))
        readStandardInput { scanner.append($0) }
        return scanner.finish()
    }
}
