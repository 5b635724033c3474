import DNSCore
import MailAuth
import MailCore
import MailIntake
import PetrelConfiguration
import PetrelSystem
import SMTPCore

/// `petrel check spf|dkim|dmarc`: the inbound checks run by hand, one line per identity or
/// signature with its result and the reason, and for DMARC what the server would do.
public enum CheckTool {
    /// The SMTP envelope the checks judge.
    public struct Envelope: Sendable {
        public var ip: String
        /// The MAIL FROM address, with or without angle brackets; "" for the null sender.
        public var sender: String
        public var helo: String

        public init(ip: String, sender: String, helo: String) {
            self.ip = ip
            self.sender = sender
            self.helo = helo
        }

        func address() throws -> IPAddress {
            guard let address = IPAddress(self.ip) else { throw ToolUsageError("'\(self.ip)' is not an IP address") }
            return address
        }

        var mailFrom: String {
            var sender = self.sender
            if sender.hasPrefix("<"), sender.hasSuffix(">") { sender = String(sender.dropFirst().dropLast()) }
            return sender
        }
    }

    /// SPF (RFC 7208) for the MAIL FROM and HELO identities.
    public static func spf(_ configuration: Configuration, dnsServer: String?, envelope: Envelope) async throws {
        let resolver = try ResolveTool.resolver(configuration, server: dnsServer, option: "--dns")
        let verifier = SPFVerifier(resolver: resolver, receivingHost: configuration.hostname)
        let ip = try envelope.address()
        let now = Int(time(nil))
        if !envelope.mailFrom.isEmpty {
            let verdict = await verifier.check(
                ip: ip,
                mailFrom: envelope.mailFrom,
                helo: envelope.helo,
                timestamp: now
            )
            print(Self.line(verdict, identity: "mailfrom"))
        }
        let helo = await verifier.checkHELO(ip: ip, helo: envelope.helo, timestamp: now)
        print(Self.line(helo, identity: "helo"))
    }

    /// The DKIM signatures of a message read from standard input.
    public static func dkim(_ configuration: Configuration, dnsServer: String?) async throws {
        let resolver = try ResolveTool.resolver(configuration, server: dnsServer, option: "--dns")
        let scanned = Self.readMessage()
        let verdicts = await DKIMVerifier(resolver: resolver).verify(scanned)
        if verdicts.isEmpty { print("dkim: none (no DKIM-Signature field)") }
        for (index, verdict) in verdicts.enumerated() { print(Self.line(verdict, number: index + 1)) }
    }

    /// SPF, DKIM and DMARC on a message read from standard input, what the server would do
    /// with it under `[inbound]`, and the Authentication-Results field it would add.
    public static func dmarc(_ configuration: Configuration, dnsServer: String?, envelope: Envelope) async throws {
        let resolver = try ResolveTool.resolver(configuration, server: dnsServer, option: "--dns")
        let ip = try envelope.address()
        let scanned = Self.readMessage()
        let authentication = InboundAuthentication(
            policy: configuration.inbound,
            resolver: resolver,
            hostname: configuration.hostname
        )
        let heloIdentity = envelope.mailFrom.isEmpty
        let spf = await authentication.startSPF(
            client: ip,
            mailFrom: envelope.mailFrom,
            helo: envelope.helo,
            timestamp: Int(time(nil))
        ).value
        let outcome = await authentication.evaluate(spf: spf, heloIdentity: heloIdentity, message: scanned)
        if let spf { print(Self.line(spf, identity: heloIdentity ? "helo" : "mailfrom")) }
        if outcome.results.dkim.isEmpty { print("dkim: none (no DKIM-Signature field)") }
        for (index, verdict) in outcome.results.dkim.enumerated() { print(Self.line(verdict, number: index + 1)) }
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
            print("action: refuse with \(InboundAuthentication.refusal(for: problem).logText)")
        } else if let refusal = outcome.refusal {
            print("action: refuse with \(refusal.logText)")
        } else if let folder = outcome.folder {
            print("action: deliver into \(folder)")
        } else {
            print("action: deliver")
        }
        print(outcome.results.rendered, terminator: "")
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
