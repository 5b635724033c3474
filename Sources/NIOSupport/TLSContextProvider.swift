import NIOConcurrencyHelpers
import NIOSSL

/// The server's current TLS context. A reload (SIGHUP, after a certificate renewal) swaps it for
/// new connections and new STARTTLS handshakes; sessions already in TLS keep the one they began with.
public final class TLSContextProvider: Sendable {
    private let current: NIOLockedValueBox<NIOSSLContext>

    public init(_ context: NIOSSLContext) {
        self.current = NIOLockedValueBox(context)
    }

    public var context: NIOSSLContext { self.current.withLockedValue { $0 } }

    public func replace(with context: NIOSSLContext) {
        self.current.withLockedValue { $0 = context }
    }
}
