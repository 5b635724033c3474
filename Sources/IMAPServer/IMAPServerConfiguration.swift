import IMAPCore
import NIOConcurrencyHelpers
import NIOSupport

/// Settings shared by every connection of an IMAP listener.
public struct IMAPServerConfiguration: Sendable {
    public enum Kind: String, Sendable, Hashable {
        /// Port 143: plaintext until STARTTLS; no login before it.
        case imap
        /// Port 993 (RFC 8314): TLS from the first octet.
        case imaps
    }

    public struct Timeouts: Sendable, Hashable {
        /// Silence allowed before login (RFC 9051 §5.4 allows the server to be brief here).
        public var beforeLogin: Int64
        /// Silence allowed after login: at least 30 minutes (RFC 9051 §5.4), IDLE included.
        public var idle: Int64
        public var tlsHandshake: Int64

        public init(beforeLogin: Int64 = 60, idle: Int64 = 1_800, tlsHandshake: Int64 = 30) {
            self.beforeLogin = beforeLogin
            self.idle = idle
            self.tlsHandshake = tlsHandshake
        }
    }

    public var kind: Kind
    public var limits: IMAPLimits
    public var appendLimit: UInt64
    public var timeouts: Timeouts
    /// The certificate for STARTTLS and implicit TLS; nil means no TLS, so no login at all.
    public var tls: TLSContextProvider?
    /// Logged-in sessions one user may have at once (over all IMAP listeners).
    public var sessionsPerUser: Int
    public var maximumErrors: Int

    public init(
        kind: Kind,
        limits: IMAPLimits = IMAPLimits(),
        appendLimit: UInt64 = 26_214_400,
        timeouts: Timeouts = Timeouts(),
        tls: TLSContextProvider?,
        sessionsPerUser: Int = 20,
        maximumErrors: Int = 10
    ) {
        self.kind = kind
        self.limits = limits
        self.appendLimit = appendLimit
        self.timeouts = timeouts
        self.tls = tls
        self.sessionsPerUser = sessionsPerUser
        self.maximumErrors = maximumErrors
    }

    var session: IMAPSession.Configuration {
        IMAPSession.Configuration(
            startTLS: self.tls != nil && self.kind == .imap,
            implicitTLS: self.kind == .imaps,
            appendLimit: self.appendLimit,
            maximumErrors: self.maximumErrors
        )
    }
}

/// Counts each user's logged-in sessions, for `sessionsPerUser`.
public final class IMAPUserSessions: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    public init() {}

    func acquire(_ user: String, limit: Int) -> Bool {
        self.counts.withLockedValue { counts in
            guard counts[user, default: 0] < limit else { return false }
            counts[user, default: 0] += 1
            return true
        }
    }

    func release(_ user: String) {
        self.counts.withLockedValue { counts in
            let remaining = counts[user, default: 1] - 1
            counts[user] = remaining > 0 ? remaining : nil
        }
    }

    public func count(_ user: String) -> Int { self.counts.withLockedValue { $0[user, default: 0] } }
}
