import Crypto
import CryptoExtras
import MailCore

/// A DKIM key record (RFC 6376 §3.6.1, RFC 8463 §4), with its public key decoded.
struct DKIMKey {
    enum PublicKey {
        case rsa(_RSA.Signing.PublicKey, bits: Int)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    var key: PublicKey
    /// t=s: the i= domain must be d= itself, not a subdomain.
    var strict: Bool
    /// t=y: the domain is testing DKIM.
    var testing: Bool

    /// Keys shorter than this are refused (RFC 8301 §3.2).
    static let minimumRSABits = 1024

    /// Parses the record and checks it against the signature that wants it; the error is the
    /// reason the signature cannot verify (a `permerror`).
    init(record: [UInt8], for signature: DKIMSignature) throws(Refusal) {
        let tags: TagList
        do {
            tags = try TagList(parsing: record)
        } catch {
            throw Refusal("the key record is malformed: \(error)")
        }
        if let version = tags.tags.first(where: { $0.name == "v" }) {
            guard tags.tags.first?.name == "v", version.value == "DKIM1" else {
                throw Refusal("the key record is not DKIM1 (v=\(version.value))")
            }
        }
        if let hashes = tags["h"] {
            guard hashes.split(separator: ":").contains(where: { $0.trimmingWhitespace().asciiLowercased == "sha256" })
            else { throw Refusal("the key does not allow sha256 (h=\(hashes))") }
        }
        if let services = tags["s"] {
            let list = services.split(separator: ":").map { $0.trimmingWhitespace() }
            guard list.contains("*") || list.contains(where: { $0.asciiLowercased == "email" }) else {
                throw Refusal("the key is not for email (s=\(services))")
            }
        }
        let flags = (tags["t"] ?? "").split(separator: ":").map { $0.trimmingWhitespace().asciiLowercased }
        self.strict = flags.contains("s")
        self.testing = flags.contains("y")
        guard let data = tags["p"]?.withoutWhitespace else { throw Refusal("the key record has no p=") }
        guard !data.isEmpty else { throw Refusal("the key has been revoked (empty p=)") }
        guard let bytes = Base64.decode(data) else { throw Refusal("the key (p=) is not base64") }
        let kind = (tags["k"] ?? "rsa").asciiLowercased
        switch (kind, signature.algorithm) {
        case ("rsa", .rsaSHA256):
            guard let key = try? _RSA.Signing.PublicKey(unsafeDERRepresentation: bytes) else {
                throw Refusal("the RSA key (p=) cannot be read")
            }
            guard key.keySizeInBits >= Self.minimumRSABits else {
                throw Refusal("the RSA key has \(key.keySizeInBits) bits, fewer than \(Self.minimumRSABits)")
            }
            self.key = .rsa(key, bits: key.keySizeInBits)
        case ("ed25519", .ed25519SHA256):
            // RFC 8463 §4.2: p= is the bare 32-octet key, not a SubjectPublicKeyInfo.
            guard bytes.count == 32, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else {
                throw Refusal("the Ed25519 key (p=) is not 32 octets")
            }
            self.key = .ed25519(key)
        default:
            throw Refusal("the key type k=\(kind) does not match a=\(signature.algorithm.rawValue)")
        }
        if self.strict {
            let identityDomain = signature.identity.split(separator: "@").last.map { String($0).asciiLowercased } ?? ""
            guard identityDomain == signature.domain else {
                throw Refusal("the key is for d=\(signature.domain) only (t=s), but i=\(signature.identity)")
            }
        }
    }

    /// Checks `signature` over `headerData` (the canonical header input).
    func verifies(_ signature: [UInt8], over headerData: [UInt8]) -> Bool {
        let digest = SHA256.hash(data: headerData)
        switch self.key {
        case .rsa(let key, _):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature),
                for: digest,
                padding: .insecurePKCS1v1_5
            )
        case .ed25519(let key):
            return key.isValidSignature(signature, for: Array(digest))
        }
    }

    var description: String {
        switch self.key {
        case .rsa(_, let bits): return "\(bits)-bit RSA key"
        case .ed25519: return "Ed25519 key"
        }
    }

    struct Refusal: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
