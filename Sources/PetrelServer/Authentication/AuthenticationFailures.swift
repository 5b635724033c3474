import NIOConcurrencyHelpers

/// Counts failed authentications per client address and blocks an address that fails too often:
/// after `policy.failures` failures within `policy.window` seconds, it is refused (421) for
/// `policy.block` seconds. Password guessing over many connections meets this; within one
/// connection the session's error limit meets it first.
final class AuthenticationFailures: Sendable {
    struct Record {
        var failures: [ContinuousClock.Instant] = []
        var blockedUntil: ContinuousClock.Instant?
    }

    let policy: Configuration.AuthenticationPolicy
    private let records = NIOLockedValueBox<[String: Record]>([:])
    private let now: @Sendable () -> ContinuousClock.Instant
    /// Above this many addresses, the table is pruned of records that no longer matter.
    static let pruneThreshold = 10_000

    init(policy: Configuration.AuthenticationPolicy, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now })
    {
        self.policy = policy
        self.now = now
    }

    func isBlocked(_ address: String) -> Bool {
        let now = self.now()
        return self.records.withLockedValue { records in
            guard let until = records[address]?.blockedUntil else { return false }
            return until > now
        }
    }

    func recordFailure(_ address: String) {
        let now = self.now()
        let window = Duration.seconds(self.policy.window)
        self.records.withLockedValue { records in
            var record = records[address, default: Record()]
            record.failures = record.failures.filter { now - $0 < window } + [now]
            if record.failures.count >= self.policy.failures {
                record.blockedUntil = now + .seconds(self.policy.block)
                record.failures = []
            }
            records[address] = record
            if records.count > Self.pruneThreshold {
                records = records.filter { _, record in
                    (record.blockedUntil.map { $0 > now } ?? false) || record.failures.contains { now - $0 < window }
                }
            }
        }
    }
}
