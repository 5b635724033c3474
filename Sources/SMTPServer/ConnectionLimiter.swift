import Synchronization

/// Counts open connections, in all and per client IP, and refuses those over the limits.
public final class ConnectionLimiter: Sendable {
    public struct Limits: Sendable, Hashable {
        public var total: Int
        public var perIP: Int

        public init(total: Int, perIP: Int) {
            self.total = total
            self.perIP = perIP
        }
    }

    private struct State {
        var total = 0
        var perIP: [String: Int] = [:]
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits) {
        self.limits = limits
    }

    /// Takes a slot for `ip`; false when a limit is reached (then nothing is taken).
    public func acquire(ip: String) -> Bool {
        self.state.withLock { state in
            let current = state.perIP[ip, default: 0]
            guard state.total < self.limits.total, current < self.limits.perIP else { return false }
            state.total += 1
            state.perIP[ip] = current + 1
            return true
        }
    }

    public func release(ip: String) {
        self.state.withLock { state in
            state.total -= 1
            let remaining = state.perIP[ip, default: 1] - 1
            state.perIP[ip] = remaining > 0 ? remaining : nil
        }
    }

    public var openConnections: Int { self.state.withLock { $0.total } }
}
