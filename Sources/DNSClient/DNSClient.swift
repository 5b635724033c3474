import DNSCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Petrel's stub resolver: asks the configured recursive resolvers over UDP (TCP when the answer
/// is truncated), never blocks a thread, caches answers for their TTL and negative answers for
/// their SOA's (RFC 2308), and makes one query for many identical lookups at once.
public final class DNSClient: DNSResolving, Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Recursive resolvers, asked in order.
        public var servers: [SocketAddress]
        /// How long to wait for one server, once.
        public var timeout: Duration
        /// Rounds over all servers before giving up.
        public var attempts: Int
        /// Entries the cache holds at most.
        public var cacheSize: Int

        public init(
            servers: [SocketAddress],
            timeout: Duration = .seconds(2),
            attempts: Int = 2,
            cacheSize: Int = 10_000
        ) {
            self.servers = servers
            self.timeout = timeout
            self.attempts = attempts
            self.cacheSize = cacheSize
        }
    }

    /// What the client did, for logs and tests.
    public struct Statistics: Sendable, Hashable {
        public init() {}

        public var lookups = 0
        public var cacheHits = 0
        /// Lookups that waited for an identical lookup already under way.
        public var coalesced = 0
        public var queriesSent = 0
        public var tcpQueries = 0
    }

    public let configuration: Configuration
    let transport: DNSTransport
    let cache: DNSCache
    private let counters = NIOLockedValueBox(Statistics())

    /// Longest CNAME chain followed across queries.
    static let maximumChain = 8
    /// Longest time anything stays cached (a day), and a negative answer (RFC 2308 §5: 3 hours).
    static let maximumTTL: UInt32 = 86_400
    static let maximumNegativeTTL: UInt32 = 10_800

    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.configuration = configuration
        self.transport = DNSTransport(eventLoopGroup: eventLoopGroup)
        self.cache = DNSCache(capacity: configuration.cacheSize, now: now)
    }

    public var statistics: Statistics { self.counters.withLockedValue { $0 } }

    public func lookup(_ name: DNSName, _ type: DNSRecordType) async -> DNSLookupResult {
        self.counters.withLockedValue { $0.lookups += 1 }
        let key = DNSCache.Key(name: name, type: type)
        switch await self.cache.begin(key, resolve: { await self.resolve(name, type) }) {
        case .cached(let result):
            self.counters.withLockedValue { $0.cacheHits += 1 }
            return result
        case .wait(let task):
            self.counters.withLockedValue { $0.coalesced += 1 }
            return await task.value
        case .resolve(let task):
            return await task.value
        }
    }

    /// Resolves without the cache: servers in order, attempts rounds, CNAME chains followed.
    func resolve(_ name: DNSName, _ type: DNSRecordType) async -> DNSLookupResult {
        let question = DNSQuestion(name: name, type: type)
        var result = await self.query(question)
        // A chain that leaves the answer without records (an authoritative-only server, or a
        // target in another zone): ask for the target.
        var cnames = result.cnames
        // The whole chain is validated only if every response in it was.
        var authenticated = result.authenticated
        while result.status == .noData, !result.cnames.isEmpty, cnames.count < Self.maximumChain {
            let next = await self.query(DNSQuestion(name: result.canonicalName, type: type))
            if next.cnames.contains(where: { record in cnames.contains { $0.name == record.name } }) {
                return .failure(question, .cnameLoop)
            }
            cnames += next.cnames
            authenticated = authenticated && next.authenticated
            result = next
        }
        if cnames.count >= Self.maximumChain, result.status == .noData, !result.cnames.isEmpty {
            return .failure(question, .cnameLoop)
        }
        result.question = question
        result.cnames = cnames
        result.authenticated = authenticated
        // Cached no longer than any link of the chain, nor than the caps.
        let cap = result.status == .answer ? Self.maximumTTL : Self.maximumNegativeTTL
        result.ttl = min(result.ttl, cnames.map(\.ttl).min() ?? cap, cap)
        return result
    }

    /// One question, asked of each server in turn until one gives an answer (NOERROR or
    /// NXDOMAIN); SERVFAIL, REFUSED and silence move on to the next. What a server said
    /// (SERVFAIL, REFUSED) is reported over a timeout or an unreachable server.
    private func query(_ question: DNSQuestion) async -> DNSLookupResult {
        guard !self.configuration.servers.isEmpty else { return .failure(question, .unreachable("no DNS servers")) }
        var refusal: DNSLookupResult?
        var transportFailure = DNSLookupResult.failure(question, .timeout)
        for _ in 0..<max(self.configuration.attempts, 1) {
            for server in self.configuration.servers {
                var generator = SystemRandomNumberGenerator()
                let id = UInt16.random(in: 0...UInt16.max, using: &generator)
                let query = DNSQuery(id: id, name: question.name, type: question.type)
                self.counters.withLockedValue { $0.queriesSent += 1 }
                do throws(DNSTransport.Failure) {
                    var response = try await self.transport.udp(query, to: server, timeout: self.configuration.timeout)
                    if response.truncated {
                        self.counters.withLockedValue { $0.tcpQueries += 1 }
                        response = try await self.transport.tcp(query, to: server, timeout: self.configuration.timeout)
                    }
                    let result = DNSLookupResult(interpreting: response, for: question)
                    switch result.status {
                    case .answer, .noData, .nxDomain, .failure(.cnameLoop):
                        return result
                    case .failure:
                        refusal = result
                    }
                } catch {
                    switch error {
                    case .timeout: transportFailure = .failure(question, .timeout)
                    case .unreachable(let why): transportFailure = .failure(question, .unreachable(why))
                    }
                }
            }
        }
        return refusal ?? transportFailure
    }
}

/// The shared cache: results by name and type until their TTL runs out, and lookups under way,
/// so that identical lookups at the same moment make one query.
actor DNSCache {
    struct Key: Hashable {
        let name: DNSName
        let type: DNSRecordType
    }

    struct Entry {
        let result: DNSLookupResult
        let expires: ContinuousClock.Instant
    }

    enum Begin {
        case cached(DNSLookupResult)
        case wait(Task<DNSLookupResult, Never>)
        case resolve(Task<DNSLookupResult, Never>)
    }

    let capacity: Int
    let now: @Sendable () -> ContinuousClock.Instant
    private var entries: [Key: Entry] = [:]
    private var inFlight: [Key: Task<DNSLookupResult, Never>] = [:]

    init(capacity: Int, now: @escaping @Sendable () -> ContinuousClock.Instant) {
        self.capacity = capacity
        self.now = now
    }

    var count: Int { self.entries.count }

    /// A cached result, a lookup to wait for, or a new lookup this caller starts.
    func begin(_ key: Key, resolve: @escaping @Sendable () async -> DNSLookupResult) -> Begin {
        let now = self.now()
        if let entry = self.entries[key] {
            if entry.expires > now {
                var result = entry.result
                result.ttl = UInt32(max(0, (entry.expires - now).components.seconds))
                return .cached(result)
            }
            self.entries[key] = nil
        }
        if let task = self.inFlight[key] { return .wait(task) }
        // The result is in the cache before anyone waiting for the task sees it, so a lookup
        // made right after another one returns is a cache hit.
        let task = Task {
            let result = await resolve()
            self.finish(key, result)
            return result
        }
        self.inFlight[key] = task
        return .resolve(task)
    }

    private func finish(_ key: Key, _ result: DNSLookupResult) {
        self.inFlight[key] = nil
        guard result.ttl > 0 else { return }
        if self.entries.count >= self.capacity { self.evict() }
        self.entries[key] = Entry(result: result, expires: self.now() + .seconds(Int64(result.ttl)))
    }

    /// Drops what has expired, and if that is not enough, the quarter that expires soonest.
    private func evict() {
        let now = self.now()
        self.entries = self.entries.filter { $0.value.expires > now }
        guard self.entries.count >= self.capacity else { return }
        let soonest = self.entries.sorted { $0.value.expires < $1.value.expires }.prefix(max(1, self.capacity / 4))
        for (key, _) in soonest { self.entries[key] = nil }
    }
}
