extension ClientSession {
    /// Why a connection ended before its session did. Each recipient without a result is
    /// deferred with the failure's enhanced status code (RFC 3463) and its description.
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// No connection was made (refused, unreachable, no answer): the next address is as
        /// good a try.
        case cannotConnect(String)
        /// A wait ran out: what we were doing.
        case timedOut(String, seconds: Int64)
        case closedByServer
        /// The server broke the protocol: a malformed reply, replies unasked, data behind its
        /// reply to STARTTLS, a reply where the TLS handshake belonged.
        case protocolViolation(String)
        /// The TLS handshake failed; opportunistic TLS may try again in plaintext (RFC 7435).
        case tlsHandshake(String)
        /// TLS was required and the certificate did not verify.
        case untrustedCertificate(String)
        /// Any other error on the connection.
        case connection(String)

        /// X.4.1 no answer from host, X.7.5 cryptographic failure, X.4.2 bad connection.
        public var enhancedCode: EnhancedStatusCode {
            switch self {
            case .cannotConnect: return EnhancedStatusCode(4, 4, 1)
            case .tlsHandshake, .untrustedCertificate: return EnhancedStatusCode(4, 7, 5)
            case .timedOut, .closedByServer, .protocolViolation, .connection: return EnhancedStatusCode(4, 4, 2)
            }
        }

        /// The TLS handshake itself failed (not: the server misbehaved before it).
        public var isHandshake: Bool {
            switch self {
            case .tlsHandshake, .untrustedCertificate: return true
            default: return false
            }
        }

        public var description: String {
            switch self {
            case .cannotConnect(let why): return "cannot connect: \(why)"
            case .timedOut(let what, let seconds): return "timed out after \(seconds) s \(what)"
            case .closedByServer: return "the server closed the connection"
            case .protocolViolation(let what): return what
            case .tlsHandshake(let why): return "TLS handshake failed: \(why)"
            case .untrustedCertificate(let problem): return "TLS: certificate not trusted: \(problem)"
            case .connection(let why): return why
            }
        }
    }
}
