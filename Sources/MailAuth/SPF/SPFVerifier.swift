import DNSCore
import MailCore

/// The seven results of RFC 7208 §2.6.
public enum SPFResult: String, Hashable, Sendable, CaseIterable {
    case none, neutral, pass, fail, softfail, temperror, permerror
}

/// What `check_host()` concluded, and why, for the Authentication-Results comment and the logs.
public struct SPFVerdict: Hashable, Sendable {
    public var result: SPFResult
    /// The domain whose policy was evaluated (the MAIL FROM domain, or the HELO name).
    public var domain: String
    /// The identity checked: `joe@example.com`, or `postmaster@helo.example` for `<>`.
    public var sender: String
    /// Which term matched, or what went wrong: "ip4:192.0.2.0/24 matched", "no SPF record".
    public var reason: String
    /// The domain's exp= text, for a `fail` (RFC 7208 §6.2); nil when there is none.
    public var explanation: String?

    public init(result: SPFResult, domain: String, sender: String, reason: String, explanation: String? = nil) {
        self.result = result
        self.domain = domain
        self.sender = sender
        self.reason = reason
        self.explanation = explanation
    }
}

/// SPF (RFC 7208): is this IP address allowed to send mail for this domain? Pure logic over
/// `DNSResolving`; every DNS failure becomes `temperror`, never an exception.
public struct SPFVerifier: Sendable {
    public var resolver: any DNSResolving
    /// The `r` macro: our host name.
    public var receivingHost: String
    /// §4.6.4: at most 10 terms that query DNS, and at most 2 "void" lookups (no records).
    public var dnsTermLimit = 10
    public var voidLookupLimit = 2

    public init(resolver: any DNSResolving, receivingHost: String = "unknown") {
        self.resolver = resolver
        self.receivingHost = receivingHost
    }

    /// Checks the MAIL FROM identity; for the null reverse path `<>`, the HELO identity
    /// (`postmaster@` the HELO name), as §2.4 says. `timestamp` is the `t` macro (Unix seconds).
    public func check(ip: IPAddress, mailFrom: String, helo: String, timestamp: Int = 0) async -> SPFVerdict {
        var sender = mailFrom
        var domain: Substring
        if sender.isEmpty {
            sender = "postmaster@" + helo
            domain = Substring(helo)
        } else if let at = sender.lastIndex(of: "@") {
            domain = sender[sender.index(after: at)...]
            if at == sender.startIndex { sender = "postmaster" + sender }
        } else {
            domain = Substring(sender)
            sender = "postmaster@" + sender
        }
        return await self.checkHost(ip: ip, domain: String(domain), sender: sender, helo: helo, timestamp: timestamp)
    }

    /// Checks the HELO identity on its own (§2.3), as done at EHLO.
    public func checkHELO(ip: IPAddress, helo: String, timestamp: Int = 0) async -> SPFVerdict {
        await self.checkHost(ip: ip, domain: helo, sender: "postmaster@" + helo, helo: helo, timestamp: timestamp)
    }

    /// `check_host(<ip>, <domain>, <sender>)` of §4.
    public func checkHost(
        ip: IPAddress,
        domain: String,
        sender: String,
        helo: String,
        timestamp: Int = 0
    ) async
        -> SPFVerdict
    {
        let context = Context(
            ip: ip.unmapped,
            sender: sender,
            helo: helo,
            receivingHost: self.receivingHost,
            timestamp: timestamp
        )
        var verdict = SPFVerdict(result: .none, domain: domain, sender: sender, reason: "")
        // An internationalized domain (SMTPUTF8) is looked up by its A-labels.
        let lookupDomain = domain.unicodeScalars.allSatisfy(\.isASCII) ? domain : IDNA.toASCII(domain) ?? domain
        do {
            let outcome = try await self.evaluate(domain: lookupDomain, context: context, depth: 0)
            verdict.result = outcome.result
            verdict.reason = outcome.reason
            verdict.explanation = outcome.explanation
        } catch {
            verdict.result = error.result
            verdict.reason = error.reason
        }
        return verdict
    }

    // MARK: - Evaluation

    struct Abort: Error {
        var result: SPFResult
        var reason: String
        static func temp(_ reason: String) -> Abort { Abort(result: .temperror, reason: reason) }
        static func perm(_ reason: String) -> Abort { Abort(result: .permerror, reason: reason) }
    }

    struct Outcome {
        var result: SPFResult
        var reason: String
        var explanation: String?
    }

    /// Counters shared by the whole evaluation, includes and redirects alike.
    final class Context {
        let ip: IPAddress
        let sender: String
        let helo: String
        let receivingHost: String
        let timestamp: Int
        var dnsTerms = 0
        var voidLookups = 0
        var validatedName: String?

        init(ip: IPAddress, sender: String, helo: String, receivingHost: String, timestamp: Int) {
            self.ip = ip
            self.sender = sender
            self.helo = helo
            self.receivingHost = receivingHost
            self.timestamp = timestamp
        }
    }

    /// §4.3 to §4.7 for one domain.
    private func evaluate(domain: String, context: Context, depth: Int) async throws(Abort) -> Outcome {
        guard depth <= 20 else { throw .perm("includes and redirects nested too deep") }
        guard let name = Self.validDomain(domain) else {
            return Outcome(result: .none, reason: "\"\(domain)\" is not a domain name SPF can check")
        }
        let lookup = await self.resolver.lookup(name, .txt)
        let texts: [[UInt8]]
        switch lookup.status {
        case .answer:
            texts = lookup.records.compactMap(\.text).filter(SPFRecord.isSPF)
        case .noData, .nxDomain:
            texts = []
        case .failure(let failure):
            throw .temp("DNS failure looking up the TXT records of \(domain): \(failure)")
        }
        guard texts.count <= 1 else { throw .perm("\(domain) publishes \(texts.count) SPF records") }
        guard let text = texts.first else { return Outcome(result: .none, reason: "\(domain) has no SPF record") }
        let record: SPFRecord
        do {
            record = try SPFRecord(parsing: text)
        } catch {
            throw .perm("the SPF record of \(domain) is invalid: \(error)")
        }
        for directive in record.directives {
            if directive.mechanism.queriesDNS { try self.countDNSTerm(context) }
            guard try await self.matches(directive.mechanism, domain: domain, context: context, depth: depth) else {
                continue
            }
            var outcome = Outcome(
                result: directive.qualifier.result,
                reason: "\(directive.text) matched in the record of \(domain)"
            )
            if outcome.result == .fail, let exp = record.explanation {
                outcome.explanation = await self.explanation(exp, domain: domain, context: context)
            }
            return outcome
        }
        if let redirect = record.redirect {
            try self.countDNSTerm(context)
            let target = try await self.expandDomain(redirect, domain: domain, context: context)
            let outcome = try await self.evaluate(domain: target, context: context, depth: depth + 1)
            if outcome.result == .none { throw .perm("redirect=\(target): \(outcome.reason)") }
            return outcome
        }
        return Outcome(result: .neutral, reason: "no term matched in the record of \(domain)")
    }

    private func countDNSTerm(_ context: Context) throws(Abort) {
        context.dnsTerms += 1
        if context.dnsTerms > self.dnsTermLimit {
            throw .perm("more than \(self.dnsTermLimit) DNS-querying terms")
        }
    }

    private func countVoid(_ context: Context) throws(Abort) {
        context.voidLookups += 1
        if context.voidLookups > self.voidLookupLimit {
            throw .perm("more than \(self.voidLookupLimit) lookups found nothing")
        }
    }

    /// A lookup for a mechanism: records, or none (counted as void), or temperror.
    private func lookup(
        _ name: DNSName,
        _ type: DNSRecordType,
        context: Context
    ) async throws(Abort)
        -> [DNSResourceRecord]
    {
        let result = await self.resolver.lookup(name, type)
        switch result.status {
        case .answer:
            return result.records
        case .noData, .nxDomain:
            try self.countVoid(context)
            return []
        case .failure(let failure):
            throw .temp("DNS failure looking up \(type) \(name): \(failure)")
        }
    }

    private func matches(
        _ mechanism: SPFRecord.Mechanism,
        domain: String,
        context: Context,
        depth: Int
    )
        async throws(Abort) -> Bool
    {
        let ip = context.ip
        switch mechanism {
        case .all:
            return true
        case .ip4(let network, let prefix), .ip6(let network, let prefix):
            return ip.isIn(network, prefixLength: prefix)
        case .a(let spec, let v4, let v6):
            let target = try await self.target(spec, domain: domain, context: context)
            guard let name = DNSName(target) else { return false }
            let records = try await self.lookup(name, ip.isIPv4 ? .a : .aaaa, context: context)
            return records.contains { Self.address($0).map { ip.isIn($0, prefixLength: ip.isIPv4 ? v4 : v6) } ?? false }
        case .mx(let spec, let v4, let v6):
            let target = try await self.target(spec, domain: domain, context: context)
            guard let name = DNSName(target) else { return false }
            let exchanges = try await self.lookup(name, .mx, context: context).compactMap { record -> DNSName? in
                if case .mx(_, let exchange) = record.data, exchange != .root { return exchange }
                return nil
            }
            guard exchanges.count <= 10 else { throw .perm("\(target) has more than 10 MX records") }
            for exchange in exchanges {
                let result = await self.resolver.lookup(exchange, ip.isIPv4 ? .a : .aaaa)
                if case .failure(let failure) = result.status {
                    throw .temp("DNS failure looking up MX host \(exchange): \(failure)")
                }
                let prefix = ip.isIPv4 ? v4 : v6
                if result.records.contains(where: {
                    Self.address($0).map { ip.isIn($0, prefixLength: prefix) } ?? false
                }) {
                    return true
                }
            }
            return false
        case .ptr(let spec):
            let target = try await self.target(spec, domain: domain, context: context).lowercased()
            let validated = try await self.validatedNames(context: context, countVoid: true)
            return validated.contains { Self.isSubdomain($0, of: target) }
        case .exists(let spec):
            let target = try await self.expandDomain(spec, domain: domain, context: context)
            guard let name = DNSName(target) else { return false }
            return try await !self.lookup(name, .a, context: context).isEmpty
        case .include(let spec):
            let target = try await self.expandDomain(spec, domain: domain, context: context)
            let outcome = try await self.evaluate(domain: target, context: context, depth: depth + 1)
            switch outcome.result {
            case .pass: return true
            case .fail, .softfail, .neutral: return false
            case .temperror: throw .temp("include:\(target): \(outcome.reason)")
            case .permerror: throw .perm("include:\(target): \(outcome.reason)")
            case .none: throw .perm("include:\(target) has no SPF record")
            }
        }
    }

    private func target(_ spec: MacroString?, domain: String, context: Context) async throws(Abort) -> String {
        guard let spec else { return domain }
        return try await self.expandDomain(spec, domain: domain, context: context)
    }

    /// The client's host names that resolve back to its address (§5.5): at most 10 PTR names
    /// are tried, and a DNS error skips a name rather than failing the check.
    private func validatedNames(context: Context, countVoid: Bool) async throws(Abort) -> [String] {
        guard let reverse = DNSName.reverse(address: context.ip.octets) else { return [] }
        let result = await self.resolver.lookup(reverse, .ptr)
        switch result.status {
        case .answer: break
        case .noData, .nxDomain:
            if countVoid { try self.countVoid(context) }
            return []
        case .failure: return []
        }
        var names: [String] = []
        for record in result.records.prefix(10) {
            guard case .name(let host) = record.data else { continue }
            let addresses = await self.resolver.lookup(host, context.ip.isIPv4 ? .a : .aaaa)
            if addresses.records.contains(where: { Self.address($0) == context.ip }) {
                names.append(Self.text(host))
            }
        }
        return names
    }

    /// The exp= text (§6.2), or nil when it cannot be had: any failure drops the explanation,
    /// never the result.
    private func explanation(_ spec: MacroString, domain: String, context: Context) async -> String? {
        guard let target = try? await self.expandDomain(spec, domain: domain, context: context),
            let name = DNSName(target)
        else { return nil }
        let result = await self.resolver.lookup(name, .txt)
        guard result.status == .answer, result.records.count == 1, let text = result.records[0].text,
            text.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }),
            let macro = try? MacroString(parsing: Substring(String(decoding: text, as: UTF8.self)))
        else { return nil }
        return try? await self.expand(macro, domain: domain, context: context)
    }

    // MARK: - Macros (§7)

    private func expandDomain(_ spec: MacroString, domain: String, context: Context) async throws(Abort) -> String {
        var text = try await self.expand(spec, domain: domain, context: context)
        if text.hasSuffix(".") { text.removeLast() }
        // §7.3: a result over 253 characters loses labels from the left until it fits.
        while text.utf8.count > 253, let dot = text.firstIndex(of: ".") {
            text = String(text[text.index(after: dot)...])
        }
        return text
    }

    /// Expands a macro-string. c, r and t appear only in exp= text: a domain-spec that names
    /// them was refused when the record was parsed.
    private func expand(_ macro: MacroString, domain: String, context: Context) async throws(Abort) -> String {
        var output = ""
        for part in macro.parts {
            switch part {
            case .literal(let text):
                output += text
            case .macro(let letter, let urlEscape, let keep, let reverse, let delimiters):
                var value: String
                switch letter {
                case "s": value = context.sender
                case "l":
                    value = String(context.sender[..<(context.sender.lastIndex(of: "@") ?? context.sender.endIndex)])
                case "o":
                    value =
                        context.sender.lastIndex(of: "@").map {
                            String(context.sender[context.sender.index(after: $0)...])
                        } ?? ""
                case "d": value = domain
                case "i":
                    value =
                        context.ip.isIPv4
                        ? context.ip.description
                        : context.ip.octets.flatMap { [String($0 >> 4, radix: 16), String($0 & 0x0F, radix: 16)] }
                            .joined(separator: ".")
                case "p":
                    value = await self.validatedName(domain: domain, context: context)
                case "v": value = context.ip.isIPv4 ? "in-addr" : "ip6"
                case "h": value = context.helo
                case "c", "r", "t":
                    value =
                        letter == "c"
                        ? context.ip.description : letter == "r" ? context.receivingHost : String(context.timestamp)
                default:
                    throw .perm("unknown macro letter \(letter)")
                }
                if keep != nil || reverse || !delimiters.isEmpty {
                    let separators = delimiters.isEmpty ? ["."] : delimiters
                    var parts = value.split(
                        omittingEmptySubsequences: false,
                        whereSeparator: { separators.contains($0) }
                    )
                    if reverse { parts.reverse() }
                    if let keep, parts.count > keep { parts = Array(parts.suffix(keep)) }
                    value = parts.joined(separator: ".")
                }
                output += urlEscape ? Self.urlEscaped(value) : value
            }
        }
        return output
    }

    /// The `p` macro: a validated name of the client, preferring one in `domain` (§7.3).
    private func validatedName(domain: String, context: Context) async -> String {
        if let cached = context.validatedName { return cached }
        let names = (try? await self.validatedNames(context: context, countVoid: false)) ?? []
        let lowered = domain.lowercased()
        let chosen =
            names.first { $0 == lowered } ?? names.first { Self.isSubdomain($0, of: lowered) } ?? names.first
            ?? "unknown"
        context.validatedName = chosen
        return chosen
    }

    static func urlEscaped(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            if isLetter(byte) || isDigit(byte) || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E {
                output.append(Character(UnicodeScalar(byte)))
            } else {
                output += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return output
    }

    // MARK: - Helpers

    /// §4.3: a multi-label name of valid labels, else nil (and the result is `none`).
    static func validDomain(_ domain: String) -> DNSName? {
        var text = Substring(domain)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard text.contains("."), !text.hasPrefix("["), text.utf8.count <= 253,
            let name = DNSName(String(text)), name.labels.count >= 2
        else { return nil }
        return name
    }

    static func address(_ record: DNSResourceRecord) -> IPAddress? {
        switch record.data {
        case .a(let octets), .aaaa(let octets): return IPAddress(octets: octets)
        default: return nil
        }
    }

    /// A name in lower case, without its final dot.
    static func text(_ name: DNSName) -> String {
        String(name.description.dropLast()).lowercased()
    }

    static func isSubdomain(_ name: String, of domain: String) -> Bool {
        name == domain || name.hasSuffix("." + domain)
    }
}
