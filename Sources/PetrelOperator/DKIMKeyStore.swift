import Foundation
import MailAuth
import MailStore

/// The DKIM private keys under `DATA_DIR/dkim/<domain>/<selector>.pem` (PKCS#8, mode 0600): one
/// file per selector, so keys can be rotated by adding a selector and retiring the old one.
public struct DKIMKeyStore: Sendable {
    public let directory: String

    public init(dataDirectory: String) {
        self.directory = DataDirectory(dataDirectory).dkim
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public func path(domain: String, selector: String) -> String {
        self.folder(domain) + "/" + selector + ".pem"
    }

    private func folder(_ domain: String) -> String {
        self.directory + "/" + domain.asciiLowercased
    }

    /// Writes a new key; never replaces one.
    public func add(_ key: DKIMPrivateKey, domain: String, selector: String) throws(Failure) {
        // The selector is a DNS name, and so also a safe file name (no "/").
        guard DKIMSignature.isDomainName(selector) else {
            throw Failure(description: "'\(selector)' is not a valid selector (letters, digits and hyphens)")
        }
        let path = self.path(domain: domain, selector: selector)
        do {
            // The data directory too, when no server has run yet.
            try FileManager.default.createDirectory(
                atPath: self.folder(domain),
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw Failure(description: "cannot create \(self.folder(domain)): \(error.localizedDescription)")
        }
        // Never replacing an existing key, not even in a race; never half written after a crash.
        do {
            try SecretFile.write(key.pem, to: path, replacing: false)
        } catch {
            if error.exists {
                throw Failure(description: "\(path) exists: choose another --selector (keys are never replaced)")
            }
            throw Failure(description: error.description)
        }
    }

    /// Every key of `domain`, by selector name; RSA keys first (they sign first, so the
    /// Ed25519 signature, which older verifiers skip, comes on top of them).
    public func signers(for domain: String) throws(Failure) -> [DKIMSigner] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: self.folder(domain))) ?? []
        var signers: [DKIMSigner] = []
        for name in names.sorted() where name.hasSuffix(".pem") {
            let path = self.folder(domain) + "/" + name
            do {
                let key = try DKIMPrivateKey(pem: String(contentsOfFile: path, encoding: .utf8))
                signers.append(DKIMSigner(domain: domain, selector: String(name.dropLast(4)), key: key))
            } catch {
                throw Failure(description: "\(path) is not a usable DKIM key: \(error)")
            }
        }
        return signers.sorted { ($0.key.kind == .rsa ? 0 : 1) < ($1.key.kind == .rsa ? 0 : 1) }
    }
}
