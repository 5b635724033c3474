struct ClientFailure: Error, CustomStringConvertible {
    var description: String
    /// The TLS handshake itself failed (not: the server misbehaved before it).
    var handshake = false
}
