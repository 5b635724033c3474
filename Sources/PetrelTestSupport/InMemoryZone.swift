import DNSCore
import NIOConcurrencyHelpers

/// A `DNSResolving` that answers from a table, with the semantics of the conformance suites'
/// zone data (`serve_zone.py`, the OpenSPF schema): an absent name is NXDOMAIN, a present name
/// without the type is NODATA, CNAMEs are followed, and a name marked `timeout` leaves the
/// types it has no record for unanswered (a timeout failure).
public final class InMemoryZone: DNSResolving, @unchecked Sendable {
    struct Entry {
        var records: [DNSResourceRecord] = []
        var timesOut = false
        /// Types with records added before the timeout mark: those still answer.
        var answeredDespiteTimeout: Set<DNSRecordType> = []
    }

    private let entries: NIOLockedValueBox<[DNSName: Entry]> = NIOLockedValueBox([:])
    private let queries = NIOLockedValueBox<[DNSQuestion]>([])

    public init() {}

    /// Adds one record; `ttl` defaults to an hour.
    public func add(_ name: String, _ data: DNSRecordData, type: DNSRecordType, ttl: UInt32 = 3600) {
        guard let owner = DNSName(name) else { preconditionFailure("bad test name \(name)") }
        self.entries.withLockedValue { entries in
            entries[owner, default: Entry()].records.append(
                DNSResourceRecord(name: owner, type: type, ttl: ttl, data: data)
            )
        }
    }

    public func addTXT(_ name: String, _ strings: [String]) {
        self.add(name, .txt(strings.map { Array($0.utf8) }), type: .txt)
    }

    /// Makes `name` exist with no records (NODATA for every type).
    public func addEmpty(_ name: String) {
        guard let owner = DNSName(name) else { preconditionFailure("bad test name \(name)") }
        self.entries.withLockedValue { entries in
            if entries[owner] == nil { entries[owner] = Entry() }
        }
    }

    /// Queries for types `name` has no record of go unanswered from now on.
    public func addTimeout(_ name: String) {
        guard let owner = DNSName(name) else { preconditionFailure("bad test name \(name)") }
        self.entries.withLockedValue { entries in
            var entry = entries[owner, default: Entry()]
            if !entry.timesOut {
                entry.timesOut = true
                entry.answeredDespiteTimeout = Set(entry.records.map(\.type))
            }
            entries[owner] = entry
        }
    }

    /// Every question asked so far, in order.
    public var questions: [DNSQuestion] { self.queries.withLockedValue { $0 } }

    public func lookup(_ name: DNSName, _ type: DNSRecordType) async -> DNSLookupResult {
        let question = DNSQuestion(name: name, type: type)
        self.queries.withLockedValue { $0.append(question) }
        return self.entries.withLockedValue { entries in
            var current = name
            var cnames: [DNSResourceRecord] = []
            for _ in 0...8 {
                guard let entry = entries[current] else {
                    return DNSLookupResult(question: question, status: .nxDomain, cnames: cnames, ttl: 300)
                }
                let matching = entry.records.filter { $0.type == type }
                if !matching.isEmpty {
                    return DNSLookupResult(
                        question: question,
                        status: .answer,
                        records: matching,
                        cnames: cnames,
                        ttl: 300
                    )
                }
                if type != .cname, let alias = entry.records.first(where: { $0.type == .cname }),
                    case .name(let target) = alias.data
                {
                    cnames.append(alias)
                    current = target
                    continue
                }
                if entry.timesOut, !entry.answeredDespiteTimeout.contains(type) {
                    return .failure(question, .timeout)
                }
                return DNSLookupResult(question: question, status: .noData, cnames: cnames, ttl: 300)
            }
            return .failure(question, .cnameLoop)
        }
    }
}
