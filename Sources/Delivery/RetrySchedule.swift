/// When to try again (RFC 5321 §4.5.4.1): exponential backoff from `first` to `ceiling`, until
/// the message is `maximumAge` old.
public struct RetrySchedule: Hashable, Sendable {
    public var first: Int
    public var ceiling: Int
    public var maximumAge: Int

    /// About 5 minutes doubling to an hour, for 5 days.
    public init(first: Int = 300, ceiling: Int = 3600, maximumAge: Int = 432_000) {
        self.first = first
        self.ceiling = ceiling
        self.maximumAge = maximumAge
    }

    /// Seconds to wait after the `attempts`-th failed attempt (1 for the first).
    public func delay(afterAttempts attempts: Int) -> Int {
        var delay = self.first
        for _ in 1..<max(attempts, 1) {
            delay = min(delay * 2, self.ceiling)
            if delay == self.ceiling { break }
        }
        return min(delay, self.ceiling)
    }

    /// The next attempt, or nil when the message is too old to keep trying (then: bounce).
    public func nextAttempt(now: Int, arrival: Int, attempts: Int) -> Int? {
        guard now - arrival < self.maximumAge else { return nil }
        return min(now + self.delay(afterAttempts: attempts), arrival + self.maximumAge)
    }
}
