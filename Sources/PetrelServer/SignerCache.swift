import Logging
import MailAuth
import NIOConcurrencyHelpers
import PetrelOperator
import PetrelSystem

/// The DKIM keys of our domains, read from `DATA_DIR/dkim/` and looked at again after a minute
/// (a key made by `petrel dkim keygen` is used without a restart).
final class SignerCache: Sendable {
    let keys: DKIMKeyStore
    let logger: Logger
    private let cache = NIOLockedValueBox<[String: (loaded: Int64, signers: [DKIMSigner])]>([:])

    init(keys: DKIMKeyStore, logger: Logger) {
        self.keys = keys
        self.logger = logger
    }

    func signers(for domain: String) -> [DKIMSigner] {
        let now = Int64(time(nil))
        if let cached = self.cache.withLockedValue({ $0[domain] }), now - cached.loaded < 60 { return cached.signers }
        var signers: [DKIMSigner] = []
        do {
            signers = try self.keys.signers(for: domain)
        } catch {
            self.logger.error("DKIM key unusable", metadata: ["domain": "\(domain)", "error": "\(error)"])
        }
        if signers.isEmpty {
            self.logger.warning(
                "no DKIM key: mail is sent unsigned",
                metadata: ["domain": "\(domain)", "fix": "petrel dkim keygen \(domain)"]
            )
        }
        self.cache.withLockedValue { $0[domain] = (now, signers) }
        return signers
    }
}
