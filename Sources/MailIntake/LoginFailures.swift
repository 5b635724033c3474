import MailCore
import NIOConcurrencyHelpers
import PetrelConfiguration

/// Limits password guessing two ways.
///
/// **Per client** (an IPv4 address or an IPv6 /64, `IPAddress.client`, as the connection limits
/// count): after `policy.failures` failures within `policy.window` seconds the client is refused
/// (421) for `policy.block` seconds. A single address guessing over many connections meets this;
/// an IPv6 client cannot escape it by moving within its /64.
///
/// **Per account**, for guesses spread over many clients (a botnet): once an account (by the
/// name the client gave, canonical, whether or not it exists, so that the limit itself does not
/// tell which accounts exist) has failed `policy.failures` times within the window, its password
/// checks take turns: one check per delay, the delay doubling from one second with each failure
/// up to `policy.accountDelayMax`. A check whose turn is further off than that is answered
/// `454 4.7.0` (try again later) without looking at the password, and counts against its client.
/// A turn is taken only where a password is checked at once (PLAIN's and LOGIN's password,
/// SCRAM's proof), so holding turns costs the attacker a guess each. An attacker gets at most one
/// guess per `accountDelayMax` seconds per account, however many addresses it has.
///
/// The real user is not locked out by such an attack: a client that logged in to the account
/// before (within `trustedFor`) skips the turns; from anywhere else the user waits at most
/// `accountDelayMax` (or retries after a 454) while the attack lasts, and not at all once its
/// failures are older than the window.
public final class LoginFailures: Sendable {
    private struct ClientRecord {
        var failures: [ContinuousClock.Instant] = []
        var blockedUntil: ContinuousClock.Instant?
    }

    private struct AccountRecord {
        var failures: [ContinuousClock.Instant] = []
        /// When the next check may run.
        var nextCheck: ContinuousClock.Instant
    }

    private struct State {
        var clients: [String: ClientRecord] = [:]
        var accounts: [String: AccountRecord] = [:]
        /// Clients that logged in to an account, and when they last did.
        var trusted: [String: [String: ContinuousClock.Instant]] = [:]
        /// Past this many records a table is pruned (then this doubles with what remained).
        var pruneAt = LoginFailures.pruneThreshold
    }

    /// What to do about a password check for an account.
    enum Turn: Equatable {
        /// Check it after waiting this long.
        case after(Duration)
        /// Too many checks of this account are waiting: answer 454 without checking.
        case busy
    }

    let policy: Configuration.LoginFailurePolicy
    private let state = NIOLockedValueBox(State())
    private let now: @Sendable () -> ContinuousClock.Instant
    /// The tables are pruned of records that no longer matter once they pass this many entries;
    /// the threshold then doubles with what remained, so the pruning costs O(1) per failure.
    static let pruneThreshold = 10_000
    /// Clients remembered per account as having logged in to it.
    static let trustedClientsPerAccount = 16
    /// How long a client that logged in to an account skips its turns.
    static let trustedFor = Duration.seconds(30 * 86_400)

    public init(
        policy: Configuration.LoginFailurePolicy,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.policy = policy
        self.now = now
    }

    private var window: Duration { .seconds(self.policy.window) }

    func isBlocked(_ address: String) -> Bool {
        let now = self.now()
        let client = IPAddress.client(address)
        return self.state.withLockedValue { state in
            guard let until = state.clients[client]?.blockedUntil else { return false }
            return until > now
        }
    }

    /// Takes a turn to check a password of `account` (canonical) for the client at `address`.
    func turn(account: String, client address: String) -> Turn {
        let now = self.now()
        let window = self.window
        let maximum = Duration.seconds(self.policy.accountDelayMax)
        let client = IPAddress.client(address)
        return self.state.withLockedValue { state in
            if let last = state.trusted[account]?[client], now - last < Self.trustedFor { return .after(.zero) }
            var record = state.accounts[account] ?? AccountRecord(nextCheck: now)
            record.failures.removeAll { now - $0 >= window }
            let delay = self.delay(afterFailures: record.failures.count)
            let slot = max(now, record.nextCheck)
            guard slot - now <= maximum else { return .busy }
            record.nextCheck = slot + delay
            // Only accounts with something to remember are kept: a flood of made-up names must not
            // grow the table.
            state.accounts[account] = record.failures.isEmpty && record.nextCheck <= now ? nil : record
            return .after(slot - now)
        }
    }

    /// The time between two checks of an account that failed `count` times within the window:
    /// none up to `policy.failures`, then one second, doubling with each failure.
    private func delay(afterFailures count: Int) -> Duration {
        let over = count - self.policy.failures
        guard over >= 0 else { return .zero }
        return min(.seconds(self.policy.accountDelayMax), .seconds(1 << min(over, 20)))
    }

    /// Counts a failed (or abandoned) authentication against the client, and against the
    /// account when the client named one that could exist.
    func recordFailure(_ address: String, account: String?) {
        let now = self.now()
        let window = self.window
        let client = IPAddress.client(address)
        self.state.withLockedValue { state in
            var record = state.clients[client, default: ClientRecord()]
            record.failures = record.failures.filter { now - $0 < window } + [now]
            if record.failures.count >= self.policy.failures {
                record.blockedUntil = now + .seconds(self.policy.block)
                record.failures = []
            }
            state.clients[client] = record
            if let account {
                var accountRecord = state.accounts[account] ?? AccountRecord(nextCheck: now)
                accountRecord.failures = accountRecord.failures.filter { now - $0 < window } + [now]
                // The next check comes no sooner than the delay this failure earned.
                let delay = self.delay(afterFailures: accountRecord.failures.count)
                accountRecord.nextCheck = max(accountRecord.nextCheck, now + delay)
                state.accounts[account] = accountRecord
            }
            self.prune(&state, now: now)
        }
    }

    /// Remembers that the client at `address` logged in to `account`: it skips the account's
    /// turns from now on.
    func recordSuccess(_ address: String, account: String) {
        let now = self.now()
        let client = IPAddress.client(address)
        self.state.withLockedValue { state in
            var clients = state.trusted[account, default: [:]]
            clients[client] = now
            if clients.count > Self.trustedClientsPerAccount, let oldest = clients.min(by: { $0.value < $1.value }) {
                clients[oldest.key] = nil
            }
            state.trusted[account] = clients
            self.prune(&state, now: now)
        }
    }

    /// Records kept, for tests.
    var tableSizes: (clients: Int, accounts: Int, trusted: Int) {
        self.state.withLockedValue { ($0.clients.count, $0.accounts.count, $0.trusted.count) }
    }

    private func prune(_ state: inout State, now: ContinuousClock.Instant) {
        let window = self.window
        guard max(state.clients.count, state.accounts.count, state.trusted.count) > state.pruneAt else { return }
        state.clients = state.clients.filter { _, record in
            (record.blockedUntil.map { $0 > now } ?? false) || record.failures.contains { now - $0 < window }
        }
        state.accounts = state.accounts.filter { _, record in
            record.nextCheck > now || record.failures.contains { now - $0 < window }
        }
        state.trusted = state.trusted.filter { _, clients in clients.values.contains { now - $0 < Self.trustedFor } }
        state.pruneAt = max(
            Self.pruneThreshold,
            2 * max(state.clients.count, state.accounts.count, state.trusted.count)
        )
    }
}
