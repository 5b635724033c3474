import Crypto
import CryptoExtras

/// What the server keeps to verify SCRAM-SHA-256 (RFC 5802 §3, RFC 7677): not the password, not
/// even the salted password, but two keys derived from it. A stolen database lets an attacker
/// neither log in nor skip the PBKDF2 work of guessing the password.
public struct SCRAMCredentials: Hashable, Sendable {
    public var salt: [UInt8]
    public var iterations: Int
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    public init(salt: [UInt8], iterations: Int, storedKey: [UInt8], serverKey: [UInt8]) {
        self.salt = salt
        self.iterations = iterations
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// Iterations for new credentials. RFC 7677 §4 asks for at least 4096; the cost falls on the
    /// client at each login and on an attacker per guess, never on the server.
    public static let defaultIterations = 10_000

    /// Derives the keys: SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i);
    /// StoredKey = H(HMAC(SaltedPassword, "Client Key")); ServerKey = HMAC(SaltedPassword, "Server Key").
    /// The password should already be SASLprep'ed; Petrel passes it through as given (RFC 7613's
    /// OpaqueString profile leaves ASCII unchanged).
    public static func derive(password: String, salt: [UInt8], iterations: Int) throws -> SCRAMCredentials {
        let salted = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8),
            salt: salt,
            using: .sha256,
            outputByteCount: 32,
            unsafeUncheckedRounds: iterations
        )
        let clientKey = HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: salted)
        let serverKey = HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: salted)
        return SCRAMCredentials(
            salt: salt,
            iterations: iterations,
            storedKey: Array(SHA256.hash(data: Array(clientKey))),
            serverKey: Array(serverKey)
        )
    }

    /// New credentials with a random 16-octet salt.
    public static func make(password: String, iterations: Int = defaultIterations) throws -> SCRAMCredentials {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return try self.derive(password: password, salt: salt, iterations: iterations)
    }
}
