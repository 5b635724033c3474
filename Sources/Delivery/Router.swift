import DNSCore
import MailCore
import SMTPCore

/// Where mail for a domain goes (RFC 5321 §5.1, RFC 7505): its MX hosts in preference order
/// (random among equals), each with its addresses, IPv6 first; the domain itself when it has
/// no MX (implicit MX); nowhere, permanently, for a null MX or a domain that does not exist.
public struct Router: Sendable {
    public var resolver: any DNSResolving
    /// Our own names: an MX list that leads back to us is cut there (§5.1), or is a loop.
    public var localNames: Set<DNSName>

    public init(resolver: any DNSResolving, localNames: Set<DNSName>) {
        self.resolver = resolver
        self.localNames = localNames
    }

    public struct Host: Hashable, Sendable {
        public var name: DNSName
        /// Preference of the MX record; nil for an implicit MX.
        public var preference: UInt16?
        /// IPv6 addresses, then IPv4.
        public var addresses: [IPAddress]
    }

    public enum Route: Hashable, Sendable {
        /// Try these hosts in order, each address in order, port 25.
        case hosts([Host])
        /// No delivery will ever work: bounce with this status (5.1.10, 5.1.2, 5.4.6).
        case bounce(status: EnhancedStatusCode, reason: String)
        /// DNS trouble: try again later.
        case deferred(reason: String)
    }

    /// - Parameter random: chooses the order among MX records of equal preference.
    public func route(_ domain: DNSName, random: inout some RandomNumberGenerator) async -> Route {
        let mx = await self.resolver.lookup(domain, .mx)
        switch mx.status {
        case .failure(let failure):
            return .deferred(reason: "DNS failure looking up the MX records of \(Self.text(domain)): \(failure)")
        case .nxDomain:
            return .bounce(
                status: EnhancedStatusCode(5, 1, 2),
                reason: "\(Self.text(domain)) does not exist (NXDOMAIN)"
            )
        case .noData:
            // §5.1: no MX, so the domain itself is the host (implicit MX).
            let implicit = await self.addresses(of: domain)
            switch implicit {
            case .failure(let reason): return .deferred(reason: reason)
            case .found(let addresses) where !addresses.isEmpty:
                if self.localNames.contains(domain) {
                    return .bounce(
                        status: EnhancedStatusCode(5, 4, 6),
                        reason: "mail for \(Self.text(domain)) loops back to myself"
                    )
                }
                return .hosts([Host(name: domain, preference: nil, addresses: addresses)])
            case .found:
                return .bounce(
                    status: EnhancedStatusCode(5, 1, 2),
                    reason: "\(Self.text(domain)) has no MX record and no address"
                )
            }
        case .answer:
            break
        }
        var exchanges: [(preference: UInt16, name: DNSName)] = mx.records.compactMap {
            if case .mx(let preference, let exchange) = $0.data { return (preference, exchange) }
            return nil
        }
        // RFC 7505: "." is a null MX: the domain accepts no mail.
        if exchanges.contains(where: { $0.name == .root }) {
            exchanges.removeAll { $0.name == .root }
            if exchanges.isEmpty {
                return .bounce(
                    status: EnhancedStatusCode(5, 1, 10),
                    reason: "\(Self.text(domain)) accepts no mail (null MX, RFC 7505)"
                )
            }
        }
        exchanges.shuffle(using: &random)
        exchanges.sort { $0.preference < $1.preference }  // stable: equal preferences stay shuffled
        // §5.1: when we are one of the MX hosts, only those preferred to us may be used.
        if let ours = exchanges.first(where: { self.localNames.contains($0.name) }) {
            exchanges.removeAll { $0.preference >= ours.preference }
            if exchanges.isEmpty {
                return .bounce(
                    status: EnhancedStatusCode(5, 4, 6),
                    reason: "mail for \(Self.text(domain)) loops back to myself"
                )
            }
        }
        var hosts: [Host] = []
        var failures: [String] = []
        for exchange in exchanges {
            switch await self.addresses(of: exchange.name) {
            case .found(let addresses) where !addresses.isEmpty:
                hosts.append(Host(name: exchange.name, preference: exchange.preference, addresses: addresses))
            case .found:
                continue  // an MX host that does not resolve is skipped
            case .failure(let reason):
                failures.append(reason)
            }
        }
        if hosts.isEmpty {
            if let failure = failures.first { return .deferred(reason: failure) }
            return .deferred(reason: "none of the MX hosts of \(Self.text(domain)) has an address")
        }
        return .hosts(hosts)
    }

    /// The configured relay (smarthost): an address literal, or a name's addresses; no MX.
    public func route(relayHost host: String) async -> Route {
        if let address = IPAddress(host) {
            return .hosts([Host(name: DNSName(host) ?? .root, preference: nil, addresses: [address])])
        }
        guard let name = DNSName(host) else { return .deferred(reason: "the relay \(host) is not a host name") }
        switch await self.addresses(of: name) {
        case .found(let addresses) where !addresses.isEmpty:
            return .hosts([Host(name: name, preference: nil, addresses: addresses)])
        case .found:
            return .deferred(reason: "the relay \(host) has no address")
        case .failure(let reason):
            return .deferred(reason: reason)
        }
    }

    enum Addresses {
        case found([IPAddress])
        case failure(String)
    }

    /// AAAA then A; a failure of one is tolerated when the other answers.
    func addresses(of name: DNSName) async -> Addresses {
        let six = await self.resolver.lookup(name, .aaaa)
        let four = await self.resolver.lookup(name, .a)
        var addresses: [IPAddress] = []
        for result in [six, four] {
            for record in result.records {
                switch record.data {
                case .a(let octets), .aaaa(let octets):
                    if let address = IPAddress(octets: octets) { addresses.append(address) }
                default: break
                }
            }
        }
        if addresses.isEmpty {
            for result in [six, four] {
                if case .failure(let failure) = result.status {
                    return .failure("DNS failure looking up \(Self.text(name)): \(failure)")
                }
            }
        }
        return .found(addresses)
    }

    static func text(_ name: DNSName) -> String { String(name.description.dropLast()) }
}
