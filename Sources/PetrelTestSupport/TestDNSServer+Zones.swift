import DNSCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

extension TestDNSServer {
    /// One zone as the server holds it.
    struct Zone: Sendable {
        let origin: DNSName
        /// The SOA as negative answers carry it; nil when the zone did not load (SERVFAIL).
        let negativeSOA: DNSResourceRecord?
        let records: [DNSName: [DNSResourceRecord]]
        /// Every name that exists: the owners, and the names between them and the origin (empty
        /// non-terminals exist too: NODATA, not NXDOMAIN, RFC 8020).
        let names: Set<DNSName>

        init(failed origin: DNSName) {
            self.origin = origin
            self.negativeSOA = nil
            self.records = [:]
            self.names = []
        }

        init(origin name: String, zone text: String) throws {
            guard let origin = DNSName(name) else {
                throw SetupError(description: "'\(name)' is not a zone name")
            }
            let file: ZoneFile
            do {
                file = try ZoneFile(text, origin: origin)
            } catch {
                throw SetupError(description: "the zone \(origin): \(error)")
            }
            var records: [DNSName: [DNSResourceRecord]] = [:]
            var names: Set<DNSName> = []
            for record in file.records {
                guard Self.name(record.name, isAtOrBelow: origin) else {
                    throw SetupError(description: "the zone \(origin): \(record.name) is outside it")
                }
                // An RRset holds no duplicates (RFC 2181 §5).
                let here = records[record.name, default: []]
                guard !here.contains(where: { $0.type == record.type && $0.data == record.data }) else { continue }
                records[record.name, default: []].append(record)
                for count in origin.labels.count...record.name.labels.count {
                    if let ancestor = DNSName(labels: Array(record.name.labels.suffix(count))) {
                        names.insert(ancestor)
                    }
                }
            }
            let soas = (records[origin] ?? []).filter { $0.type == .soa }
            guard soas.count == 1, var soa = soas.first, case .soa(let fields) = soa.data else {
                throw SetupError(
                    description: "the zone \(origin) needs one SOA record at its origin, not \(soas.count)"
                )
            }
            // RFC 2308 §3: the SOA of a negative answer has the smaller of its TTL and its MINIMUM.
            soa.ttl = min(soa.ttl, fields.minimum)
            self.origin = origin
            self.negativeSOA = soa
            self.records = records
            self.names = names
        }

        func contains(_ name: DNSName) -> Bool { Self.name(name, isAtOrBelow: self.origin) }

        static func name(_ name: DNSName, isAtOrBelow origin: DNSName) -> Bool {
            let labels = name.canonical
            let suffix = origin.canonical
            return labels.count >= suffix.count && Array(labels.suffix(suffix.count)) == suffix
        }
    }

    /// The zones, and how a query is answered from them.
    struct Zones: Sendable {
        let zones: [Zone]

        /// Knot's default (and the DNS flag day 2020 size), announced in the echoed OPT record.
        static let payloadSize: UInt16 = 1232

        /// The closest enclosing zone.
        func zone(for name: DNSName) -> Zone? {
            self.zones.filter { $0.contains(name) }.max { $0.origin.labels.count < $1.origin.labels.count }
        }

        /// The response's header and question: id, opcode, RD and CD as asked, the question echoed,
        /// OPT (with DO as asked) when the query had one (RFC 6891 §6.1.1).
        static func header(for query: DNSMessage) -> DNSMessage {
            DNSMessage(
                id: query.id,
                opcode: query.opcode,
                recursionDesired: query.recursionDesired,
                checkingDisabled: query.checkingDisabled,
                questions: query.questions,
                ednsPayloadSize: query.ednsPayloadSize == nil ? nil : Self.payloadSize,
                dnssecOK: query.ednsPayloadSize != nil && query.dnssecOK
            )
        }

        /// RFC 1034 §4.3.2 for an authoritative server without delegations or wildcards.
        func answer(_ query: DNSMessage) -> DNSMessage {
            var response = Self.header(for: query)
            guard query.opcode == 0 else {
                response.responseCode = .notImplemented
                return response
            }
            guard query.questions.count == 1, let question = query.questions.first else {
                response.responseCode = .formatError
                return response
            }
            guard question.recordClass == 1, let zone = self.zone(for: question.name) else {
                response.responseCode = .refused
                return response
            }
            guard let soa = zone.negativeSOA else {
                response.responseCode = .serverFailure
                return response
            }
            response.authoritative = true
            // Owner names as asked (the question's spelling, then each CNAME target's), as Knot
            // writes them through compression pointers.
            func renamed(_ records: [DNSResourceRecord], _ owner: DNSName) -> [DNSResourceRecord] {
                records.map { record in
                    var record = record
                    record.name = owner
                    return record
                }
            }
            var owner = question.name
            var visited: Set<DNSName> = [owner]
            while zone.contains(owner) {
                let here = zone.records[owner] ?? []
                let matching = here.filter { $0.type == question.type || question.type.rawValue == 255 }
                if !matching.isEmpty {
                    response.answers += renamed(matching, owner)
                    return response
                }
                if question.type != .cname, let cname = here.first(where: { $0.type == .cname }),
                    case .name(let target) = cname.data
                {
                    response.answers += renamed([cname], owner)
                    // A loop is given once round, as Knot does; the resolver sees it.
                    guard visited.insert(target).inserted else { return response }
                    owner = target
                    continue
                }
                response.responseCode = zone.names.contains(owner) ? .noError : .nameError
                response.authorities = [soa]
                return response
            }
            // The chain left the zone: the resolver asks for the target itself.
            return response
        }
    }
}
