import MailCore

/// What a domain owner asks for mail that fails DMARC (RFC 9989 §4.7 "p").
public enum DMARCPolicy: String, Hashable, Sendable, Comparable {
    case none, quarantine, reject

    /// One step more lenient: what t=y asks for (RFC 9989 §4.7 "t").
    var testingDowngrade: DMARCPolicy {
        switch self {
        case .none, .quarantine: return .none
        case .reject: return .quarantine
        }
    }

    var strictness: Int {
        switch self {
        case .none: return 0
        case .quarantine: return 1
        case .reject: return 2
        }
    }

    public static func < (lhs: DMARCPolicy, rhs: DMARCPolicy) -> Bool { lhs.strictness < rhs.strictness }
}

/// A DMARC Policy Record (RFC 9989 §4.7, §4.8). Unknown tags are ignored; a known tag with a
/// value that does not parse is dropped in favour of its default, as §4.8 says.
public struct DMARCRecord: Hashable, Sendable {
    /// p=; nil when absent (then "none") or invalid (`policyInvalid`).
    public var policy: DMARCPolicy?
    public var subdomainPolicy: DMARCPolicy?
    public var nonexistentPolicy: DMARCPolicy?
    /// p= present but not a policy, or sp=/np= invalid: §4.10.1 then asks for rua= (act as p=none)
    /// or no DMARC processing at all.
    public var policyInvalid = false
    /// psd=: "y", "n" or "u" (the default).
    public var publicSuffix: Character = "u"
    /// t=y: the owner is testing; the policy applied is one step more lenient.
    public var testing = false
    public var strictDKIM = false
    public var strictSPF = false
    /// rua= URIs that look like URIs (scheme ":" something).
    public var aggregateReportURIs: [String] = []

    /// Nil unless the text is a DMARC record: "v=DMARC1" first, exactly (§4.7 "v").
    public init?(_ text: [UInt8]) {
        guard let tags = try? TagList(parsing: text), let first = tags.tags.first, first.name.asciiLowercased == "v",
            first.value == "DMARC1"
        else { return nil }
        func value(_ name: String) -> String? {
            tags.tags.first { $0.name.asciiLowercased == name }?.value.trimmingWhitespace().asciiLowercased
        }
        func policy(_ name: String) -> DMARCPolicy?? {
            guard let text = value(name) else { return .some(nil) }
            return DMARCPolicy(rawValue: text).map { .some($0) } ?? nil
        }
        if let p = policy("p") { self.policy = p } else { self.policyInvalid = true }
        if let sp = policy("sp") { self.subdomainPolicy = sp } else { self.policyInvalid = true }
        if let np = policy("np") { self.nonexistentPolicy = np } else { self.policyInvalid = true }
        if let psd = value("psd"), ["y", "n", "u"].contains(psd) { self.publicSuffix = Character(psd) }
        if let t = value("t") {
            self.testing = t == "y"
        } else if let pct = value("pct"), Int(pct) == 0 {
            // RFC 7489's pct= is gone from RFC 9989, which names t=y as the analogue of pct=0:
            // a domain rolling DMARC out with "p=quarantine; pct=0" asks for none of its mail to
            // be quarantined. Any other pct is read as if absent.
            self.testing = true
        }
        self.strictDKIM = value("adkim") == "s"
        self.strictSPF = value("aspf") == "s"
        self.aggregateReportURIs = (value("rua") ?? "").split(separator: ",").map { $0.trimmingWhitespace() }.filter {
            guard let colon = $0.firstIndex(of: ":"), colon != $0.startIndex else { return false }
            return $0[..<colon].allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
                && $0.index(after: colon) != $0.endIndex
        }
    }
}
