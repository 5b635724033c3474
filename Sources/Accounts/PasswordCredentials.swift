/// Everything stored about a password: a crypt(3) hash for PLAIN and LOGIN, and SCRAM keys for
/// SCRAM-SHA-256. Never the password itself.
public struct PasswordCredentials: Hashable, Sendable {
    public var cryptHash: String
    /// Absent for a hash imported from elsewhere: such a user can log in with PLAIN and LOGIN only.
    public var scram: SCRAMCredentials?

    public init(cryptHash: String, scram: SCRAMCredentials?) {
        self.cryptHash = cryptHash
        self.scram = scram
    }

    /// Hashes a new password both ways. Slow on purpose (yescrypt, PBKDF2): not for an event loop.
    public static func make(password: String) throws -> PasswordCredentials {
        PasswordCredentials(
            cryptHash: try PasswordHasher.hash(password),
            scram: try SCRAMCredentials.make(password: password)
        )
    }
}
