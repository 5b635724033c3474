/// Why a lookup gave no usable answer. SPF, DKIM and DMARC turn these into `temperror`, unlike
/// NXDOMAIN and NODATA, which are answers ("there is nothing") and become `none`.
public enum DNSFailure: Hashable, Sendable, CustomStringConvertible {
    /// SERVFAIL.
    case serverFailure
    /// REFUSED.
    case refused
    /// Another RCODE.
    case responseCode(DNSResponseCode)
    /// No server answered in time.
    case timeout
    /// The servers could not be reached, or answered with something unreadable.
    case unreachable(String)
    /// A CNAME chain that loops or is too long.
    case cnameLoop

    public var description: String {
        switch self {
        case .serverFailure: return "SERVFAIL"
        case .refused: return "REFUSED"
        case .responseCode(let code): return code.description
        case .timeout: return "timeout"
        case .unreachable(let why): return "unreachable: \(why)"
        case .cnameLoop: return "CNAME loop"
        }
    }
}

/// The outcome of one lookup, with the distinctions mail authentication needs.
public struct DNSLookupResult: Hashable, Sendable {
    public enum Status: Hashable, Sendable {
        /// Records of the asked type (possibly behind CNAMEs).
        case answer
        /// The name exists, but has no record of this type.
        case noData
        /// The name does not exist.
        case nxDomain
        case failure(DNSFailure)
    }

    public var question: DNSQuestion
    public var status: Status
    /// The records of the asked type, at the end of any CNAME chain.
    public var records: [DNSResourceRecord]
    /// The CNAMEs followed from the name asked to the one that answered.
    public var cnames: [DNSResourceRecord]
    /// The resolver set AD: it validated the answer with DNSSEC. Worth something only from a
    /// validating resolver on a trusted path (loopback).
    public var authenticated: Bool
    /// Seconds this result may be cached; 0 for failures.
    public var ttl: UInt32

    public init(
        question: DNSQuestion,
        status: Status,
        records: [DNSResourceRecord] = [],
        cnames: [DNSResourceRecord] = [],
        authenticated: Bool = false,
        ttl: UInt32 = 0
    ) {
        self.question = question
        self.status = status
        self.records = records
        self.cnames = cnames
        self.authenticated = authenticated
        self.ttl = ttl
    }

    public static func failure(_ question: DNSQuestion, _ failure: DNSFailure) -> DNSLookupResult {
        DNSLookupResult(question: question, status: .failure(failure))
    }

    /// Where the CNAME chain ends: the name that has (or lacks) the records.
    public var canonicalName: DNSName {
        if case .name(let target) = self.cnames.last?.data { return target }
        return self.question.name
    }
}

/// A DNS resolver, as the rest of Petrel sees it: `DNSClient` on the network, an in-memory
/// table in tests.
public protocol DNSResolving: Sendable {
    func lookup(_ name: DNSName, _ type: DNSRecordType) async -> DNSLookupResult
}

extension DNSLookupResult {
    /// Reads a response to `question` (RFC 1034 §3.6.2, RFC 2308, RFC 6604): follows the CNAME
    /// chain inside it, and works out the TTL the result may be cached for.
    public init(interpreting response: DNSMessage, for question: DNSQuestion, maximumChain: Int = 16) {
        self.init(question: question, status: .noData, authenticated: response.authenticatedData)
        switch response.responseCode {
        case .noError, .nameError:
            break
        case .serverFailure:
            self.status = .failure(.serverFailure)
            return
        case .refused:
            self.status = .failure(.refused)
            return
        default:
            self.status = .failure(.responseCode(response.responseCode))
            return
        }
        var current = question.name
        var seen: Set<DNSName> = [current]
        while true {
            let records = response.answers.filter { $0.name == current && $0.type == question.type }
            if !records.isEmpty {
                self.records = records
                break
            }
            guard question.type != .cname,
                let cname = response.answers.first(where: { $0.name == current && $0.type == .cname }),
                case .name(let target) = cname.data
            else { break }
            guard self.cnames.count < maximumChain, seen.insert(target).inserted else {
                self.status = .failure(.cnameLoop)
                return
            }
            self.cnames.append(cname)
            current = target
        }
        let chainTTL = self.cnames.map(\.ttl).min()
        if !self.records.isEmpty {
            self.status = .answer
            self.ttl = min(self.records.map(\.ttl).min() ?? 0, chainTTL ?? .max)
            return
        }
        // The RCODE speaks of the last name of the chain (RFC 6604 §2.1).
        self.status = response.responseCode == .nameError ? .nxDomain : .noData
        // Negative answers are cached for the SOA's TTL, at most its minimum (RFC 2308 §5).
        if let soa = response.authorities.first(where: { $0.type == .soa }), case .soa(let fields) = soa.data {
            self.ttl = min(soa.ttl, fields.minimum, chainTTL ?? .max)
        }
    }
}
