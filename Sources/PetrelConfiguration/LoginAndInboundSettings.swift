// What Petrel does about failed logins ([auth]) and about mail that fails SPF, DKIM or DMARC
// ([inbound]).

extension Configuration {
    /// Failed logins: after `failures` within `window` seconds from one client (an IPv4 address
    /// or an IPv6 /64), it gets 421 for `block` seconds; after as many for one account, its
    /// password checks take turns, one per delay that doubles up to `accountDelayMax` seconds.
    public struct LoginFailurePolicy: Sendable, Hashable {
        public var failures: Int = 5
        public var window: Int = 600
        public var block: Int = 600
        public var accountDelayMax: Int = 30

        public init() {}
    }

    /// SPF, DKIM and DMARC on mail from other servers (`[inbound]`): what is checked, and what a
    /// failure does. Mail from authenticated users is never checked.
    public struct InboundPolicy: Sendable, Hashable {
        public enum Action: String, Sendable, Hashable {
            /// 550 5.7.1 at the end of data.
            case reject
            /// Delivered into the junk folder.
            case quarantine
            /// Delivered as usual (the result is still recorded).
            case none
        }

        /// Check and record SPF, DKIM and DMARC (Authentication-Results).
        public var verify = true
        /// DMARC fail under p=reject.
        public var dmarcReject = Action.reject
        /// DMARC fail under p=quarantine.
        public var dmarcQuarantine = Action.quarantine
        /// DNS trouble finding the DMARC policy: 451 4.7.5 (try later) rather than accept, unless
        /// an SPF or DKIM pass for the From domain itself makes the policy moot.
        public var deferOnDMARCTemperror = true
        /// SPF fail for a domain without DMARC: 550 5.7.23 instead of recording it.
        public var rejectSPFFail = false
        /// The Maildir++ folder quarantined mail goes to.
        public var junkFolder = ".Junk"
        /// Seconds SPF may take in all (RFC 7208 §4.6.4 asks for a limit of at least 20), and
        /// DKIM with DMARC at the end of data: a sender whose DNS answers slowly gets a
        /// temporary error, not a session held for minutes.
        public var timeLimit = 20

        public init() {}
    }
}

extension Configuration.LoginFailurePolicy {
    /// The failed-login keys of `[auth]`.
    mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
        if let value = try table.int("failures", in: 1...1000) { self.failures = value }
        if let value = try table.int("failure_window", in: 1...86_400) { self.window = value }
        if let value = try table.int("block", in: 0...86_400) { self.block = value }
        if let value = try table.int("account_delay_max", in: 1...3_600) { self.accountDelayMax = value }
    }
}

extension Configuration.InboundPolicy {
    /// The keys of `[inbound]` (and, deprecated, of `[auth]`).
    static let keys = [
        "verify", "dmarc_reject", "dmarc_quarantine", "dmarc_temperror", "spf_fail", "junk_folder", "time_limit",
    ]

    /// The SPF, DKIM and DMARC keys: `[inbound]`.
    mutating func read(_ table: inout TableReader) throws(ConfigurationError) {
        if let value = try table.bool("verify") { self.verify = value }
        if let value = try table.choice("dmarc_reject", ["reject", "quarantine", "none"]) {
            self.dmarcReject = .init(rawValue: value)!
        }
        if let value = try table.choice("dmarc_quarantine", ["quarantine", "none"]) {
            self.dmarcQuarantine = .init(rawValue: value)!
        }
        if let value = try table.choice("dmarc_temperror", ["defer", "accept"]) {
            self.deferOnDMARCTemperror = value == "defer"
        }
        if let value = try table.choice("spf_fail", ["reject", "accept"]) { self.rejectSPFFail = value == "reject" }
        if let value = try table.string("junk_folder") {
            guard value.hasPrefix("."), value.count > 1, !value.contains("/"), value != ".." else {
                throw table.error(
                    "junk_folder",
                    "'\(value)' is not a Maildir++ folder name (one starting with a dot, like \".Junk\")"
                )
            }
            self.junkFolder = value
        }
        if let value = try table.int("time_limit", in: 1...300) { self.timeLimit = value }
    }
}
