import DNSCore
import MailCore

/// RFC 8601 / RFC 9989 §9.2 DMARC results.
public enum DMARCResult: String, Hashable, Sendable {
    case none, pass, fail, temperror, permerror
}

/// What to do with the message, before local policy ([inbound] settings) has its say.
public enum DMARCDisposition: String, Hashable, Sendable {
    /// Deliver as usual.
    case none
    /// Deliver into the recipient's junk folder.
    case quarantine
    /// Refuse at the end of data.
    case reject
}

public struct DMARCVerdict: Hashable, Sendable {
    public var result: DMARCResult
    /// The Author Domain(s) from From, in A-label form.
    public var authorDomains: [String]
    /// The policy in force for the failing domain (after sp=/np= selection, before t=y).
    public var policy: DMARCPolicy?
    /// Where that policy was published: `_dmarc.example.com`.
    public var policyRecord: String?
    /// The owner asked for testing (t=y): the disposition is one step more lenient than `policy`.
    public var testing = false
    public var disposition: DMARCDisposition
    public var reason: String

    public init(
        result: DMARCResult,
        authorDomains: [String],
        policy: DMARCPolicy? = nil,
        policyRecord: String? = nil,
        testing: Bool = false,
        disposition: DMARCDisposition,
        reason: String
    ) {
        self.result = result
        self.authorDomains = authorDomains
        self.policy = policy
        self.policyRecord = policyRecord
        self.testing = testing
        self.disposition = disposition
        self.reason = reason
    }
}

/// DMARC as RFC 9989 (DMARCbis) has it: policy discovery and Organizational Domains by the DNS
/// Tree Walk (no Public Suffix List), SPF alignment on the MAIL FROM identity only, `t=` in
/// place of `pct=`, `np=` for non-existent subdomains, and `psd=`.
public struct DMARCVerifier: Sendable {
    public var resolver: any DNSResolving
    /// §11.5: a From field with many domains is evaluated for this many at most.
    public var maximumAuthorDomains = 5

    public init(resolver: any DNSResolving) {
        self.resolver = resolver
    }

    /// The authenticated identifiers DMARC looks at.
    public struct Identifiers: Sendable {
        /// The MAIL FROM domain and its SPF result; nil for the null reverse path (§4.4.2: the
        /// HELO identity does not count).
        public var spf: (domain: String, result: SPFResult)?
        /// d= of each DKIM signature and its result.
        public var dkim: [(domain: String, result: DKIMResult)]

        public init(spf: (domain: String, result: SPFResult)?, dkim: [(domain: String, result: DKIMResult)]) {
            self.spf = spf
            self.dkim = dkim
        }
    }

    /// Evaluates a message with the given From header field values (one per field).
    public func evaluate(fromFields: [String], identifiers: Identifiers) async -> DMARCVerdict {
        var domains: [String] = []
        for value in fromFields {
            // Read as strictly as the author-field rule reads it (`AuthorFields`).
            guard let addresses = AddressList.mailboxes(in: value), !addresses.isEmpty else {
                return DMARCVerdict(
                    result: .permerror,
                    authorDomains: [],
                    disposition: .none,
                    reason: "the From field \"\(value.prefix(80))\" has no readable address"
                )
            }
            for address in addresses {
                guard let domain = AddressList.domain(of: address) else {
                    return DMARCVerdict(
                        result: .permerror,
                        authorDomains: [],
                        disposition: .none,
                        reason: "the From address \(address) has no domain name"
                    )
                }
                if !domains.contains(domain) { domains.append(domain) }
            }
        }
        guard !domains.isEmpty else {
            return DMARCVerdict(result: .permerror, authorDomains: [], disposition: .none, reason: "no From field")
        }
        // §5.3.1 and §11.5: several Author Domains (several addresses, or several From fields,
        // which RFC 5322 forbids) are each evaluated, and the strictest failing policy applies;
        // past a limit the message is refused rather than let a spoofed domain hide among many.
        guard domains.count <= self.maximumAuthorDomains else {
            return DMARCVerdict(
                result: .permerror,
                authorDomains: domains,
                disposition: .reject,
                reason: "From names \(domains.count) domains, more than the \(self.maximumAuthorDomains) evaluated"
            )
        }
        var cache = OrganizationalDomains()
        var verdicts: [DMARCVerdict] = []
        for domain in domains {
            verdicts.append(await self.evaluate(authorDomain: domain, identifiers: identifiers, cache: &cache))
        }
        if verdicts.count == 1 { return verdicts[0] }
        return Self.combine(verdicts, domains: domains, fields: fromFields.count)
    }

    private static func combine(_ verdicts: [DMARCVerdict], domains: [String], fields: Int) -> DMARCVerdict {
        let why = fields > 1 ? "\(fields) From fields" : "one From field with \(domains.count) domains"
        if let failing = verdicts.filter({ $0.result == .fail }).max(by: { ($0.policy ?? .none) < ($1.policy ?? .none) }
        ) {
            var verdict = failing
            verdict.authorDomains = domains
            verdict.disposition = verdicts.map(\.disposition).max(by: { Self.rank($0) < Self.rank($1) }) ?? .none
            verdict.reason = "\(why); strictest failure: \(failing.reason)"
            return verdict
        }
        if let temporary = verdicts.first(where: { $0.result == .temperror }) {
            var verdict = temporary
            verdict.authorDomains = domains
            return verdict
        }
        var verdict = verdicts.first(where: { $0.result == .pass }) ?? verdicts[0]
        verdict.authorDomains = domains
        verdict.reason =
            "\(why); " + verdicts.map { "\($0.authorDomains.first ?? ""): \($0.result)" }.joined(separator: ", ")
        return verdict
    }

    private static func rank(_ disposition: DMARCDisposition) -> Int {
        switch disposition {
        case .none: return 0
        case .quarantine: return 1
        case .reject: return 2
        }
    }

    /// One Author Domain (A-label form, lower case).
    public func evaluate(authorDomain: String, identifiers: Identifiers) async -> DMARCVerdict {
        var cache = OrganizationalDomains()
        return await self.evaluate(authorDomain: authorDomain, identifiers: identifiers, cache: &cache)
    }

    private func evaluate(
        authorDomain: String,
        identifiers: Identifiers,
        cache: inout OrganizationalDomains
    ) async
        -> DMARCVerdict
    {
        var verdict = DMARCVerdict(result: .none, authorDomains: [authorDomain], disposition: .none, reason: "")
        // §4.10.1: policy discovery.
        let discovery: Discovery
        do {
            discovery = try await self.discoverPolicy(authorDomain)
        } catch {
            verdict.result = .temperror
            verdict.reason = "DNS failure finding the DMARC policy: \(error.failure)"
            return verdict
        }
        guard let discovery else {
            verdict.reason = "no DMARC record for \(authorDomain)"
            return verdict
        }
        let record = discovery.record
        verdict.policyRecord = "_dmarc.\(discovery.domain)"
        if record.policyInvalid, record.aggregateReportURIs.isEmpty {
            verdict.reason = "the record at \(verdict.policyRecord!) has an invalid policy and no rua=: not applied"
            return verdict
        }
        var policy: DMARCPolicy
        if record.policyInvalid {
            policy = .none
        } else if discovery.domain == authorDomain {
            policy = record.policy ?? .none
        } else {
            policy = record.subdomainPolicy ?? record.policy ?? .none
            if let np = record.nonexistentPolicy {
                let existence = await self.resolver.lookup(DNSName(authorDomain) ?? .root, .a)
                if existence.status == .nxDomain { policy = np }
            }
        }
        verdict.policy = policy
        verdict.testing = record.testing

        // §4.4, §4.10.2: an aligned pass of either kind passes.
        do {
            var aligned: String?
            for signature in identifiers.dkim where signature.result == .pass {
                if try await self.aligned(signature.domain, authorDomain, strict: record.strictDKIM, cache: &cache) {
                    aligned = "DKIM d=\(signature.domain)"
                    break
                }
            }
            if aligned == nil, let spf = identifiers.spf, spf.result == .pass,
                try await self.aligned(spf.domain, authorDomain, strict: record.strictSPF, cache: &cache)
            {
                aligned = "SPF \(spf.domain)"
            }
            if let aligned {
                verdict.result = .pass
                verdict.reason = "\(aligned) is aligned with \(authorDomain)"
                return verdict
            }
        } catch {
            verdict.result = .temperror
            verdict.reason = "DNS failure finding an Organizational Domain: \(error.failure)"
            return verdict
        }
        verdict.result = .fail
        let applied = record.testing ? policy.testingDowngrade : policy
        switch applied {
        case .none: verdict.disposition = .none
        case .quarantine: verdict.disposition = .quarantine
        case .reject: verdict.disposition = .reject
        }
        verdict.reason =
            "no aligned SPF or DKIM pass for \(authorDomain); policy \(policy.rawValue)"
            + (record.testing ? " (t=y: \(applied.rawValue) applied)" : "")
        return verdict
    }

    // MARK: - DNS Tree Walk (§4.10)

    struct WalkFailure: Error {
        var failure: DNSFailure
    }

    typealias Discovery = (domain: String, record: DMARCRecord)?

    /// The names a Tree Walk queries, from `domain` up: the domain, then (past 7 labels) its last
    /// 7 labels, then one label fewer at a time down to the top-level domain. At most 8 names.
    static func walk(_ domain: String) -> [String] {
        var labels = domain.split(separator: ".").map(String.init)
        var names = [labels.joined(separator: ".")]
        labels = labels.count >= 8 ? Array(labels.suffix(7)) : Array(labels.dropFirst())
        while !labels.isEmpty {
            names.append(labels.joined(separator: "."))
            labels.removeFirst()
        }
        return names
    }

    /// The one valid DMARC record at `_dmarc.domain`; nil when there is none, or several (§4.10
    /// step 2).
    func record(at domain: String) async throws(WalkFailure) -> DMARCRecord? {
        guard let name = DNSName("_dmarc." + domain) else { return nil }
        let result = await self.resolver.lookup(name, .txt)
        switch result.status {
        case .answer:
            let records = result.records.compactMap(\.text).compactMap(DMARCRecord.init)
            return records.count == 1 ? records[0] : nil
        case .noData, .nxDomain:
            return nil
        case .failure(let failure):
            throw WalkFailure(failure: failure)
        }
    }

    /// §4.10.1: the record of the Author Domain, else the first one found up the tree.
    func discoverPolicy(_ authorDomain: String) async throws(WalkFailure) -> Discovery {
        for domain in Self.walk(authorDomain) {
            if let record = try await self.record(at: domain) { return (domain, record) }
        }
        return nil
    }

    /// Organizational Domains found so far in one evaluation.
    struct OrganizationalDomains {
        var known: [String: String] = [:]
    }

    /// §4.10.2: psd=n marks the Organizational Domain; psd=y marks a public suffix, whose child on
    /// the way down is it; otherwise the record with the fewest labels; with no record at all,
    /// the domain itself.
    func organizationalDomain(
        _ domain: String,
        cache: inout OrganizationalDomains
    ) async throws(WalkFailure)
        -> String
    {
        if let known = cache.known[domain] { return known }
        let names = Self.walk(domain)
        var found: [(domain: String, record: DMARCRecord)] = []
        for name in names {
            guard let record = try await self.record(at: name) else { continue }
            found.append((name, record))
            if record.publicSuffix == "n" || record.publicSuffix == "y" { break }
        }
        var result = found.last?.domain ?? domain
        for entry in found {
            if entry.record.publicSuffix == "n" {
                result = entry.domain
                break
            }
            if entry.record.publicSuffix == "y", entry.domain != domain {
                // The name one label below the public suffix, on the way to `domain`.
                let depth = entry.domain.split(separator: ".").count + 1
                result = domain.split(separator: ".").suffix(depth).joined(separator: ".")
                break
            }
        }
        cache.known[domain] = result
        return result
    }

    func aligned(
        _ identifier: String,
        _ authorDomain: String,
        strict: Bool,
        cache: inout OrganizationalDomains
    )
        async throws(WalkFailure) -> Bool
    {
        let identifier = IDNA.toASCII(identifier) ?? identifier.asciiLowercased
        if identifier == authorDomain { return true }
        if strict { return false }
        let left = try await self.organizationalDomain(identifier, cache: &cache)
        let right = try await self.organizationalDomain(authorDomain, cache: &cache)
        return left == right
    }
}
