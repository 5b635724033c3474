import Accounts
import NIOConcurrencyHelpers
import NIOPosix

/// Checks passwords against their yescrypt hashes on threads of their own, a bounded number at
/// a time.
///
/// yescrypt is slow by design (tens of milliseconds of CPU and memory per check). On the thread
/// pool that also writes and syncs messages, a flood of AUTH attempts queued in front of every
/// commit and slowed all mail; here the flood waits for its own few threads, and past `maximum`
/// checks waiting or running, new ones are refused (454 4.7.0, try again later) instead of
/// queueing without end.
public final class PasswordChecks: Sendable {
    private let pool: NIOThreadPool
    let maximum: Int
    private let pending = NIOLockedValueBox(0)
    private let check: @Sendable (String, String) -> Bool

    /// - Parameters:
    ///   - threads: how many checks run at once.
    ///   - maximum: how many may be running or waiting.
    ///   - check: the check itself (yescrypt and the others, through libxcrypt; tests give one
    ///     they hold up).
    public init(
        threads: Int = 2,
        maximum: Int = 64,
        check: @escaping @Sendable (String, String) -> Bool = { PasswordHasher.verify($0, against: $1) }
    ) {
        self.pool = NIOThreadPool(numberOfThreads: threads)
        self.maximum = maximum
        self.check = check
        self.pool.start()
    }

    /// Whether `password` matches `hash`; nil when too many checks are under way.
    func verify(_ password: String, against hash: String) async -> Bool? {
        let admitted = self.pending.withLockedValue { pending in
            guard pending < self.maximum else { return false }
            pending += 1
            return true
        }
        guard admitted else { return nil }
        defer { self.pending.withLockedValue { $0 -= 1 } }
        let check = self.check
        return (try? await self.pool.runIfActive { check(password, hash) }) ?? false
    }

    /// Checks running or waiting now.
    var inFlight: Int { self.pending.withLockedValue { $0 } }

    public func shutdown() async {
        try? await self.pool.shutdownGracefully()
    }
}
