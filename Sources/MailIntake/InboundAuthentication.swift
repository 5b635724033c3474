import DNSCore
import MailAuth
import MailCore
import NIOConcurrencyHelpers
import PetrelConfiguration
import SMTPCore

/// SPF, DKIM and DMARC for one incoming message, and what the server does with the verdicts
/// (`[inbound]`). SPF starts as soon as the message does, so its DNS queries overlap the transfer;
/// DKIM hashes the body as it streams by; DMARC runs at the end of data.
public struct InboundAuthentication: Sendable {
    public let policy: Configuration.InboundPolicy
    public let resolver: any DNSResolving
    public let hostname: String

    public init(policy: Configuration.InboundPolicy, resolver: any DNSResolving, hostname: String) {
        self.policy = policy
        self.resolver = resolver
        self.hostname = hostname
    }

    /// The `[inbound]` choices, as the pure decision takes them. (PetrelConfiguration keeps its
    /// own `Action` so that the configuration reader does not link MailAuth and swift-crypto.)
    var enforcement: Enforcement.Policy {
        func action(_ action: Configuration.InboundPolicy.Action) -> Enforcement.Policy.Action {
            switch action {
            case .reject: return .reject
            case .quarantine: return .quarantine
            case .none: return .none
            }
        }
        return Enforcement.Policy(
            dmarcReject: action(self.policy.dmarcReject),
            dmarcQuarantine: action(self.policy.dmarcQuarantine),
            deferOnDMARCTemperror: self.policy.deferOnDMARCTemperror,
            rejectSPFFail: self.policy.rejectSPFFail
        )
    }

    /// The outcome, ready for the header, the log line and the reply.
    public struct Outcome: Sendable {
        public var results: AuthenticationResults
        /// nil: deliver. Otherwise the reply that refuses (or defers) the message.
        public var refusal: SMTPReply?
        /// Deliver into this Maildir++ folder rather than the inbox.
        public var folder: String?

        public var summary: String {
            var parts: [String] = []
            if let spf = self.results.spf { parts.append("spf=\(spf.verdict.result.rawValue)") }
            parts.append(
                self.results.dkim.isEmpty
                    ? "dkim=none" : "dkim=" + self.results.dkim.map(\.result.rawValue).joined(separator: ",")
            )
            if let dmarc = self.results.dmarc { parts.append("dmarc=\(dmarc.result.rawValue)") }
            return parts.joined(separator: " ")
        }
    }

    /// Starts the SPF check of the MAIL FROM identity, or of the HELO identity for `<>`.
    public func startSPF(client: IPAddress?, mailFrom: String, helo: String, timestamp: Int) -> Task<SPFVerdict?, Never>
    {
        let verifier = SPFVerifier(resolver: self.resolver, receivingHost: self.hostname)
        let limit = Duration.seconds(self.policy.timeLimit)
        return Task {
            guard let client else { return nil }
            let verdict = await Self.withinTimeLimit(limit) {
                await verifier.check(ip: client, mailFrom: mailFrom, helo: helo, timestamp: timestamp)
            }
            if let verdict { return verdict }
            let sender = mailFrom.isEmpty ? "postmaster@" + helo : mailFrom
            return SPFVerdict(
                result: .temperror,
                domain: mailFrom.isEmpty
                    ? helo
                    : String(sender[(sender.lastIndex(of: "@").map(sender.index(after:)) ?? sender.startIndex)...]),
                sender: sender,
                reason: "SPF took longer than \(self.policy.timeLimit) seconds (slow DNS)"
            )
        }
    }

    public func evaluate(spf: SPFVerdict?, heloIdentity: Bool, message: MessageScanner.Scanned) async -> Outcome {
        let resolver = self.resolver
        let fromFields = message.header?.fields(named: "From").map(\.value) ?? []
        let checked = await Self.withinTimeLimit(.seconds(self.policy.timeLimit)) {
            let dkim = await DKIMVerifier(resolver: resolver).verify(message)
            let dmarc = await DMARCVerifier(resolver: resolver).evaluate(
                fromFields: fromFields,
                identifiers: .init(
                    // RFC 9989 counts SPF's MAIL FROM identity, which for the null reverse path is
                    // postmaster@ the HELO name (RFC 7208 §2.4): a bounce is judged by its HELO.
                    spf: spf.map { (domain: $0.domain.asciiLowercased, result: $0.result) },
                    dkim: dkim.compactMap { verdict in verdict.domain.map { (domain: $0, result: verdict.result) } }
                )
            )
            return (dkim, dmarc)
        }
        let (dkim, dmarc) = checked ?? Self.tookTooLong(message, seconds: self.policy.timeLimit)
        var outcome = Outcome(
            results: AuthenticationResults(
                authservID: self.hostname,
                spf: spf.map { ($0, heloIdentity) },
                dkim: dkim,
                dmarc: dmarc
            )
        )
        switch Enforcement.decide(spf: spf, dkim: dkim, dmarc: dmarc, policy: self.enforcement) {
        case .deliver:
            break
        case .quarantine:
            outcome.folder = self.policy.junkFolder
        case .rejectDMARCFailure(let domain):
            outcome.refusal = SMTPReply(
                550,
                EnhancedStatusCode(5, 7, 1),
                "Email rejected per DMARC policy for \(domain)"
            )
        case .deferDMARCTemporaryError(let domain):
            outcome.refusal = SMTPReply(
                451,
                EnhancedStatusCode(4, 7, 5),
                "Temporary DNS failure evaluating the DMARC policy of \(domain), try again later"
            )
        case .rejectDMARCPermanentError(let reason):
            outcome.refusal = SMTPReply(550, EnhancedStatusCode(5, 7, 1), "Email rejected: \(reason)")
        case .rejectSPFFailure(let domain):
            outcome.refusal = SMTPReply(
                550,
                EnhancedStatusCode(5, 7, 23),
                "SPF validation failed: \(domain) does not allow this host to send its mail"
            )
        }
        return outcome
    }

    /// What is recorded when DKIM and DMARC ran out of time: temporary errors all round.
    static func tookTooLong(_ message: MessageScanner.Scanned, seconds: Int) -> ([DKIMVerdict], DMARCVerdict) {
        let why = "DNS took longer than \(seconds) seconds"
        let dkim = message.signatures.map { signature in
            switch signature {
            case .success(let valid):
                return DKIMVerdict(
                    result: .temperror,
                    domain: valid.domain,
                    selector: valid.selector,
                    signatureText: valid.signatureText,
                    reason: why
                )
            case .failure(let invalid):
                return DKIMVerdict(
                    result: .permerror,
                    domain: invalid.domain,
                    selector: invalid.selector,
                    reason: invalid.reason
                )
            }
        }
        let domains = (message.header?.fields(named: "From") ?? []).compactMap { AuthorFields.addresses(in: $0.value) }
            .flatMap { $0 }.compactMap(AddressList.domain(of:))
        return (dkim, DMARCVerdict(result: .temperror, authorDomains: domains, disposition: .none, reason: why))
    }

    /// The operation's result, or nil when `limit` passes first. The operation is cancelled then
    /// and left to finish on its own (its DNS queries have their own timeouts); the caller does
    /// not wait for it.
    static func withinTimeLimit<T: Sendable>(
        _ limit: Duration,
        _ operation: @escaping @Sendable () async -> T
    ) async -> T? {
        let work = Task { await operation() }
        let once = Once()
        return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let timer = Task {
                try? await Task.sleep(for: limit)
                if once.claim() {
                    work.cancel()
                    continuation.resume(returning: nil)
                }
            }
            Task {
                let result = await work.value
                if once.claim() {
                    timer.cancel()
                    continuation.resume(returning: result)
                }
            }
        }
    }

    /// True for the first caller only.
    final class Once: Sendable {
        private let claimed = NIOLockedValueBox(false)

        func claim() -> Bool {
            self.claimed.withLockedValue { claimed in
                defer { claimed = true }
                return !claimed
            }
        }
    }

    /// The refusal of a message from another server whose author cannot be read as a mail reader
    /// will show it (`AuthorFields`): DMARC would judge something other than what the reader
    /// sees, so it is not delivered.
    public static func refusal(for problem: AuthorFields.Problem) -> SMTPReply {
        switch problem {
        case .malformedHeader:
            return SMTPReply(554, EnhancedStatusCode(5, 6, 0), "Message refused: \(problem) (RFC 5322 section 2.2)")
        case .noFrom, .severalFrom, .unreadable:
            return SMTPReply(
                550,
                EnhancedStatusCode(5, 7, 1),
                "Message refused: \(problem); a message needs exactly one From field with a valid address (RFC 5322 section 3.6)"
            )
        }
    }

    /// Whether an incoming field is an Authentication-Results field that claims to be ours, and
    /// so a forgery to drop (RFC 8601 §5).
    func isForgedResults(_ field: HeaderField) -> Bool {
        guard let claimed = AuthenticationResults.authservID(of: field) else { return false }
        var ours = self.hostname.asciiLowercased
        if ours.hasSuffix(".") { ours.removeLast() }
        return claimed == ours
    }
}
