import NIOConcurrencyHelpers
import PetrelConfiguration
import Testing

@testable import MailIntake

/// The limits on password guessing, on a clock the test moves by hand.
@Suite struct LoginFailuresTests {
    final class Clock: Sendable {
        private let current = NIOLockedValueBox(ContinuousClock.now)
        var now: ContinuousClock.Instant { self.current.withLockedValue { $0 } }
        func advance(_ duration: Duration) { self.current.withLockedValue { $0 += duration } }
    }

    static func failures(_ clock: Clock, failures: Int = 3, accountDelayMax: Int = 8) -> LoginFailures {
        var policy = Configuration.LoginFailurePolicy()
        policy.failures = failures
        policy.window = 600
        policy.block = 600
        policy.accountDelayMax = accountDelayMax
        return LoginFailures(policy: policy, now: { clock.now })
    }

    /// An IPv6 client is its /64 (as for the connection limits): moving to another address in
    /// it does not buy more guesses. Before, each address had its own count.
    @Test func anIPv6ClientIsItsSlash64() {
        let clock = Clock()
        let failures = Self.failures(clock)
        for host in 1...3 { failures.recordFailure("2001:db8:1:2::\(host)", account: nil) }
        #expect(failures.isBlocked("2001:db8:1:2:ffff::99"))
        #expect(!failures.isBlocked("2001:db8:1:3::1"), "the next /64 is another client")
        #expect(!failures.isBlocked("192.0.2.1"))
        for _ in 1...3 { failures.recordFailure("::ffff:192.0.2.7", account: nil) }
        #expect(failures.isBlocked("192.0.2.7"), "an IPv4-mapped address is the IPv4 address")
        clock.advance(.seconds(601))
        #expect(!failures.isBlocked("2001:db8:1:2::1"), "the block ends")
    }

    /// Past `failures` for one account, its checks take turns one delay apart, the delay
    /// doubling up to `accountDelayMax`; a turn further off than that is `busy`. Names that never
    /// failed are not remembered, and the turns end once the failures are older than the window.
    @Test func anAccountsChecksTakeTurnsOnceItFailsOften() {
        let clock = Clock()
        let failures = Self.failures(clock)
        for index in 1...3 {
            #expect(failures.turn(account: "alice@example.test", client: "203.0.113.9") == .after(.zero))
            failures.recordFailure("192.0.2.\(index)", account: "alice@example.test")
        }
        #expect(
            failures.turn(account: "alice@example.test", client: "203.0.113.9") == .after(.seconds(1)),
            "one second after the third"
        )
        failures.recordFailure("192.0.2.4", account: "alice@example.test")
        // Four failures: two seconds apart, and at most eight seconds ahead.
        let turns = (0..<6).map { _ in failures.turn(account: "alice@example.test", client: "203.0.113.9") }
        #expect(turns.filter { $0 != .busy }.count <= 5)
        #expect(turns.contains(.busy))
        #expect(turns.first == .after(.seconds(2)), "\(turns)")
        #expect(
            failures.turn(account: "bob@example.test", client: "203.0.113.9") == .after(.zero),
            "another account is not slowed"
        )
        clock.advance(.seconds(601))
        #expect(
            failures.turn(account: "alice@example.test", client: "203.0.113.9") == .after(.zero),
            "the failures aged out"
        )
    }

    @Test func theDelayIsCappedAtTheMaximum() {
        let clock = Clock()
        let failures = Self.failures(clock, failures: 1, accountDelayMax: 5)
        for index in 1...30 { failures.recordFailure("192.0.2.\(index)", account: "alice@example.test") }
        #expect(failures.turn(account: "alice@example.test", client: "203.0.113.9") == .after(.seconds(5)))
        #expect(failures.turn(account: "alice@example.test", client: "203.0.113.9") == .busy)
    }

    /// A client that logged in to an account before skips its turns: an attack on the account
    /// from elsewhere does not lock its user out.
    @Test func aClientThatLoggedInBeforeSkipsTheTurns() {
        let clock = Clock()
        let failures = Self.failures(clock, failures: 1, accountDelayMax: 5)
        failures.recordSuccess("2001:db8:7::1", account: "alice@example.test")
        for index in 1...30 { failures.recordFailure("192.0.2.\(index)", account: "alice@example.test") }
        #expect(failures.turn(account: "alice@example.test", client: "203.0.113.9") == .after(.seconds(5)))
        #expect(failures.turn(account: "alice@example.test", client: "203.0.113.9") == .busy)
        #expect(failures.turn(account: "alice@example.test", client: "2001:db8:7::42") == .after(.zero), "its /64")
        #expect(failures.turn(account: "bob@example.test", client: "2001:db8:7::1") == .after(.zero))
        // Thirty days later the client is a stranger again.
        clock.advance(.seconds(31 * 86_400))
        for index in 1...30 { failures.recordFailure("192.0.2.\(index)", account: "alice@example.test") }
        #expect(failures.turn(account: "alice@example.test", client: "2001:db8:7::1") == .after(.seconds(5)))
    }

    /// A flood of failures for made-up names from many clients leaves the tables bounded: what
    /// no longer matters is dropped as they grow.
    @Test func theTablesStayBounded() {
        let clock = Clock()
        let failures = Self.failures(clock, failures: 5)
        for index in 0..<50_000 {
            failures.recordFailure(
                "10.\(index / 65_536).\(index / 256 % 256).\(index % 256)",
                account: "n\(index)@x.test"
            )
            if index % 10_000 == 9_999 { clock.advance(.seconds(601)) }
        }
        #expect(failures.tableSizes.clients <= 2 * LoginFailures.pruneThreshold + 10_000)
        #expect(failures.tableSizes.accounts <= 2 * LoginFailures.pruneThreshold + 10_000)
    }
}
