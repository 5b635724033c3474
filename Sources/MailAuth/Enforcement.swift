/// What a receiver does with a message once SPF, DKIM and DMARC have spoken: DMARC leaves the
/// choice to the receiver (RFC 9989 §5.8, as RFC 7489 §6.7 did), and these are the receiver's
/// rules, pure, so that each combination of verdicts and settings is one row of a table test.
public enum Enforcement {
    /// What the operator chose for each case (`[inbound]`).
    public struct Policy: Hashable, Sendable {
        public enum Action: String, Hashable, Sendable {
            /// Refuse the message.
            case reject
            /// Deliver it into the junk folder.
            case quarantine
            /// Deliver it as usual (the result is still recorded).
            case none
        }

        /// DMARC fail under p=reject.
        public var dmarcReject: Action
        /// DMARC fail under p=quarantine.
        public var dmarcQuarantine: Action
        /// DNS trouble finding the DMARC policy defers the message, when the policy could be
        /// reject and neither SPF nor DKIM passed for the From domain itself.
        public var deferOnDMARCTemperror: Bool
        /// SPF fail for a domain without DMARC refuses the message.
        public var rejectSPFFail: Bool

        public init(
            dmarcReject: Action = .reject,
            dmarcQuarantine: Action = .quarantine,
            deferOnDMARCTemperror: Bool = true,
            rejectSPFFail: Bool = false
        ) {
            self.dmarcReject = dmarcReject
            self.dmarcQuarantine = dmarcQuarantine
            self.deferOnDMARCTemperror = deferOnDMARCTemperror
            self.rejectSPFFail = rejectSPFFail
        }
    }

    public enum Decision: Hashable, Sendable {
        case deliver
        /// Into the junk folder.
        case quarantine
        /// DMARC fails under a policy the operator enforces as reject; `domain` is the author's.
        case rejectDMARCFailure(domain: String)
        /// The DMARC policy could not be read for DNS trouble, and it could be reject.
        case deferDMARCTemporaryError(domain: String)
        /// The DMARC record is broken (permerror) and would reject.
        case rejectDMARCPermanentError(reason: String)
        /// SPF fails for a domain without DMARC, and the operator refuses such mail.
        case rejectSPFFailure(domain: String)
    }

    public static func decide(
        spf: SPFVerdict?,
        dkim: [DKIMVerdict],
        dmarc: DMARCVerdict,
        policy: Policy
    ) -> Decision {
        let domain = dmarc.authorDomains.first ?? "the sender's domain"
        switch dmarc.result {
        case .fail:
            let action: Policy.Action
            switch dmarc.disposition {
            case .reject: action = policy.dmarcReject
            case .quarantine: action = policy.dmarcQuarantine
            case .none: action = .none
            }
            switch action {
            case .reject: return .rejectDMARCFailure(domain: domain)
            case .quarantine: return .quarantine
            case .none: return .deliver
            }
        case .temperror:
            // Defer only when the answer could have been "reject": the policy is unknown, or
            // known to be reject; and no SPF or DKIM pass for the From domain itself (which
            // passes DMARC whatever the record says).
            let couldReject = dmarc.policy.map { $0 == .reject && !dmarc.testing } ?? true
            let authorPass =
                dkim.contains { $0.result == .pass && $0.domain == dmarc.authorDomains.first }
                || (spf?.result == .pass && spf?.domain.asciiLowercased == dmarc.authorDomains.first)
            if policy.deferOnDMARCTemperror, policy.dmarcReject == .reject, couldReject, !authorPass {
                return .deferDMARCTemporaryError(domain: domain)
            }
            return .deliver
        case .permerror:
            if dmarc.disposition == .reject, policy.dmarcReject == .reject {
                return .rejectDMARCPermanentError(reason: dmarc.reason)
            }
            return .deliver
        case .none:
            if let spf, spf.result == .fail, policy.rejectSPFFail { return .rejectSPFFailure(domain: spf.domain) }
            return .deliver
        case .pass:
            return .deliver
        }
    }
}
