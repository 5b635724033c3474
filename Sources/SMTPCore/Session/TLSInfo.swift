/// What a TLS handshake negotiated, for the `Received:` field and the logs.
public struct TLSInfo: Hashable, Sendable, CustomStringConvertible {
    /// "TLSv1.3", "TLSv1.2".
    public var version: String
    /// IANA name, e.g. "TLS_AES_128_GCM_SHA256"; nil when it could not be told.
    public var cipher: String?

    public init(version: String, cipher: String?) {
        self.version = version
        self.cipher = cipher
    }

    /// "TLSv1.3 with cipher TLS_AES_128_GCM_SHA256", as Postfix and others write it in `Received:`.
    public var description: String {
        guard let cipher = self.cipher else { return self.version }
        return "\(self.version) with cipher \(cipher)"
    }
}
