import CCrypt
import PetrelSystem

/// Password hashes in the crypt(3) formats Debian and Dovecot use, through libxcrypt:
/// yescrypt (`$y$`) for new hashes; any format libxcrypt knows (bcrypt `$2b$`, sha512crypt `$6$`)
/// verifies, so hashes imported from elsewhere keep working.
///
/// Hashing is deliberately slow (tens of milliseconds): call it off the event loop.
public enum PasswordHasher {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A new yescrypt hash of `password` with a random salt.
    public static func hash(_ password: String) throws -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        // A null rbytes asks libxcrypt for salt bytes from the OS; count 0 picks its default cost.
        guard crypt_gensalt_rn("$y$", 0, nil, 0, &setting, Int32(setting.count)) != nil else {
            throw Failure(description: "crypt_gensalt_rn failed: \(String(cString: strerror(errno)))")
        }
        let settingText = String(decoding: setting.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let hash = self.crypt(password, setting: settingText), !hash.hasPrefix("*") else {
            throw Failure(description: "crypt_r failed: \(String(cString: strerror(errno)))")
        }
        return hash
    }

    /// Whether `password` matches `hash`, compared in constant time.
    public static func verify(_ password: String, against hash: String) -> Bool {
        guard !hash.isEmpty, !hash.hasPrefix("*"), let computed = self.crypt(password, setting: hash) else {
            return false
        }
        return constantTimeEqual(Array(computed.utf8), Array(hash.utf8))
    }

    private static func crypt(_ password: String, setting: String) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer {
            // The work area holds password-derived state: wipe it.
            memset(data, 0, MemoryLayout<crypt_data>.size)
            data.deallocate()
        }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_r(password, setting, data) else { return nil }
        return String(cString: result)
    }
}
