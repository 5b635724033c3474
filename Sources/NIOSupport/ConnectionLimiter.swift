import MailCore
import NIOConcurrencyHelpers

/// Counts open connections, in all and per client, and refuses those over the limits. A client is
/// an IPv4 address or an IPv6 /64: one host is given a whole /64 (RFC 6177), so counting single
/// IPv6 addresses would give it billions of limits.
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
    private let state = NIOLockedValueBox(State())

    public init(limits: Limits) {
        self.limits = limits
    }

    /// Takes a slot for `ip`; false when a limit is reached (then nothing is taken).
    public func acquire(ip: String) -> Bool {
        let client = IPAddress.client(ip)
        return self.state.withLockedValue { state in
            let current = state.perIP[client, default: 0]
            guard state.total < self.limits.total, current < self.limits.perIP else { return false }
            state.total += 1
            state.perIP[client] = current + 1
            return true
        }
    }

    public func release(ip: String) {
        let client = IPAddress.client(ip)
        self.state.withLockedValue { state in
            state.total -= 1
            let remaining = state.perIP[client, default: 1] - 1
            state.perIP[client] = remaining > 0 ? remaining : nil
        }
    }

    public var openConnections: Int { self.state.withLockedValue { $0.total } }
}
