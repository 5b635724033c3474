import NIOConcurrencyHelpers

/// What TLS gave us: recorded per RFC 7435 even when not required.
public struct TLSDetails: Hashable, Sendable {
    /// "TLSv1.3".
    public var version: String
    /// The certificate chains to a trusted root and names the host.
    public var verified: Bool
    /// Why it did not verify.
    public var problem: String?
}

/// What the verification callback found, for the task that waits for the handshake.
final class VerificationRecord: Sendable {
    let problem = NIOLockedValueBox<String?>("no certificate")
}
