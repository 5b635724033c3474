import Crypto
import CryptoExtras
import MailCore

/// A DKIM private key: RSA (rsa-sha256) or Ed25519 (ed25519-sha256, RFC 8463), kept as PKCS#8 PEM.
public enum DKIMPrivateKey: Sendable {
    case rsa(_RSA.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)

    public enum Kind: String, Sendable, CaseIterable {
        case rsa, ed25519
    }

    /// A new key: RSA-2048, or Ed25519.
    public static func generate(_ kind: Kind) throws -> DKIMPrivateKey {
        switch kind {
        case .rsa: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        case .ed25519: return .ed25519(Curve25519.Signing.PrivateKey())
        }
    }

    /// Reads a PKCS#8 (or, for RSA, PKCS#1) PEM key.
    public init(pem: String) throws {
        if let key = try? Curve25519.Signing.PrivateKey(pemRepresentation: pem) {
            self = .ed25519(key)
        } else {
            let key = try _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem)
            guard key.keySizeInBits >= DKIMKey.minimumRSABits else { throw KeyTooShort(bits: key.keySizeInBits) }
            self = .rsa(key)
        }
    }

    public struct KeyTooShort: Error, CustomStringConvertible {
        public var bits: Int
        public var description: String { "the RSA key has \(self.bits) bits; DKIM needs at least 1024 (2048 advised)" }
    }

    public var pem: String {
        switch self {
        case .rsa(let key): return key.pkcs8PEMRepresentation
        case .ed25519(let key): return key.pemRepresentation
        }
    }

    public var kind: Kind {
        switch self {
        case .rsa: return .rsa
        case .ed25519: return .ed25519
        }
    }

    var algorithm: DKIMSignature.Algorithm {
        switch self {
        case .rsa: return .rsaSHA256
        case .ed25519: return .ed25519SHA256
        }
    }

    /// The key record to publish at `selector._domainkey.domain` (RFC 6376 §3.6.1; for
    /// Ed25519 the bare 32-octet key, RFC 8463 §4.2).
    public var record: String {
        switch self {
        case .rsa(let key): return "v=DKIM1; k=rsa; p=" + Base64.encode(key.publicKey.derRepresentation)
        case .ed25519(let key): return "v=DKIM1; k=ed25519; p=" + Base64.encode(key.publicKey.rawRepresentation)
        }
    }

    func sign(_ headerData: [UInt8]) throws -> [UInt8] {
        let digest = SHA256.hash(data: headerData)
        switch self {
        case .rsa(let key):
            return Array(try key.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation)
        case .ed25519(let key):
            // RFC 8463 §3: Ed25519 signs the SHA-256 digest of the header input.
            return Array(try key.signature(for: Array(digest)))
        }
    }
}

/// Signs messages for one domain and selector (RFC 6376 §5, relaxed/relaxed).
public struct DKIMSigner: Sendable {
    public var domain: String
    public var selector: String
    public var key: DKIMPrivateKey

    /// Signed when present; signed once more than present (over-signed), so that nobody can add
    /// another one later without breaking the signature. The first group is over-signed even
    /// when absent: a From, To, Subject... added on the way does not pass.
    public static let alwaysSigned = ["from", "to", "cc", "subject", "date", "message-id", "reply-to"]
    public static let signedWhenPresent = [
        "in-reply-to", "references", "mime-version", "content-type", "content-transfer-encoding",
        "content-disposition", "content-language", "content-id", "content-description", "sender",
        "list-id", "list-unsubscribe", "list-unsubscribe-post", "list-post", "list-help", "list-owner",
        "list-archive", "resent-from", "resent-to", "resent-cc", "resent-date", "resent-message-id",
        "autocrypt", "openpgp", "feedback-id",
    ]

    public init(domain: String, selector: String, key: DKIMPrivateKey) {
        self.domain = domain.asciiLowercased
        self.selector = selector
        self.key = key
    }

    /// The names for h=, in the order their instances are used (bottom-up per name, §5.4.2).
    public static func signedHeaders(_ header: HeaderSection) -> [String] {
        var names: [String] = []
        for name in Self.alwaysSigned + Self.signedWhenPresent {
            let present = header.fields(named: name).count
            guard present > 0 || Self.alwaysSigned.contains(name) else { continue }
            names += Array(repeating: name, count: present + 1)
        }
        return names
    }

    /// The DKIM-Signature field for a message with this header section and a relaxed body hash
    /// (`BodyHasher(BodyHashRequest(canonicalization: .relaxed))`), folded, with its CRLF.
    public func signatureField(header: HeaderSection, bodyHash: [UInt8], timestamp: Int) throws -> String {
        let tags = [
            "v=1", "a=\(self.key.algorithm.rawValue)", "c=relaxed/relaxed", "d=\(self.domain)",
            "s=\(self.selector)", "t=\(timestamp)", "h=" + Self.signedHeaders(header).joined(separator: ":"),
            "bh=" + Base64.encode(bodyHash),
        ]
        let unsigned = Self.fold("DKIM-Signature: ", tags + ["b="])
        let signature = try self.key.sign(
            DKIMVerifier.headerData(
                signedHeaders: Self.signedHeaders(header),
                canonicalization: .relaxed,
                signatureField: Array((unsigned + "\r\n").utf8),
                header: header
            )
        )
        // b= goes last, on lines of its own: its folding white space is no part of the value.
        var value = Base64.encode(signature)[...]
        var folded = unsigned
        while !value.isEmpty {
            folded += "\r\n\t" + value.prefix(72)
            value = value.dropFirst(72)
        }
        return folded + "\r\n"
    }

    /// Signs a whole message held in memory (`petrel dkim sign`, tests); the queue signs as it
    /// streams. Returns the signature field to put on top.
    public func signatureField(for message: some Collection<UInt8>, timestamp: Int) throws -> String {
        var scanner = MessageScanner(now: timestamp, dkim: false)
        scanner.append(message)
        let scanned = scanner.finish()
        var body = BodyHasher(BodyHashRequest(canonicalization: .relaxed))
        if let length = scanner.headerLength {
            var rest = message.dropFirst(length)
            // The empty line that ends the header section is not body.
            if rest.first == 0x0D { rest = rest.dropFirst() }
            if rest.first == 0x0A { rest = rest.dropFirst() }
            body.update(rest)
        }
        return try self.signatureField(
            header: scanned.header ?? HeaderSection(fields: []),
            bodyHash: body.finalize(),
            timestamp: timestamp
        )
    }

    /// Tags joined with "; ", folded before a tag that would pass 78 columns.
    static func fold(_ start: String, _ tags: [String]) -> String {
        var text = start
        var column = start.utf8.count
        for (index, tag) in tags.enumerated() {
            let piece = tag + (index == tags.count - 1 ? "" : ";")
            if index > 0 {
                if column + 1 + piece.utf8.count > 78 {
                    text += "\r\n\t"
                    column = 8
                } else {
                    text += " "
                    column += 1
                }
            }
            text += piece
            column += piece.utf8.count
        }
        return text
    }
}
