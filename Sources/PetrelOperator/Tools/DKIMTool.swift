import MailAuth
import PetrelConfiguration
import PetrelSystem

/// `petrel dkim`: the keys outbound mail is signed with, in `DATA_DIR/dkim/DOMAIN/SELECTOR.pem`.
public enum DKIMTool {
    /// Makes a key (`rsa` or `ed25519`) and prints the DNS record to publish.
    public static func makeKey(
        _ configuration: Configuration,
        domain: String,
        selector: String,
        algorithm: String
    ) throws {
        guard let kind = DKIMPrivateKey.Kind(rawValue: algorithm) else {
            throw ToolUsageError("--algorithm is rsa or ed25519, not '\(algorithm)'")
        }
        guard DKIMSignature.isDomainName(domain.asciiLowercased) else {
            throw ToolUsageError("'\(domain)' is not a domain name")
        }
        let store = DKIMKeyStore(dataDirectory: configuration.dataDirectory)
        let key = try DKIMPrivateKey.generate(kind)
        do {
            try store.add(key, domain: domain, selector: selector)
        } catch {
            printError(error.description)
            throw ToolExit(1)
        }
        print("; wrote \(store.path(domain: domain, selector: selector)); publish:")
        print(Self.zoneLine(domain: domain, selector: selector, key: key))
    }

    /// The DNS record of every key of a domain.
    public static func list(_ configuration: Configuration, domain: String) throws {
        let signers = try Self.signers(configuration, domain: domain)
        if signers.isEmpty { print("; no DKIM key for \(domain): petrel dkim keygen \(domain)") }
        for signer in signers {
            print(Self.zoneLine(domain: signer.domain, selector: signer.selector, key: signer.key))
        }
    }

    /// Signs a message from standard input with every key of a domain, as outbound mail is, and
    /// writes it with its DKIM-Signature fields on top.
    public static func sign(_ configuration: Configuration, domain: String) throws {
        let signers = try Self.signers(configuration, domain: domain)
        guard !signers.isEmpty else {
            printError("no DKIM key for \(domain): make one with petrel dkim keygen \(domain)")
            throw ToolExit(1)
        }
        var message: [UInt8] = []
        readStandardInput { message += $0 }
        var output = ""
        let now = Int(time(nil))
        for signer in signers { output = try signer.signatureField(for: message, timestamp: now) + output }
        let bytes = Array(output.utf8) + message
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }

    /// The domain's keys; exit status 1 with the reason when one cannot be read.
    static func signers(_ configuration: Configuration, domain: String) throws -> [DKIMSigner] {
        do {
            return try DKIMKeyStore(dataDirectory: configuration.dataDirectory).signers(for: domain)
        } catch {
            printError(error.description)
            throw ToolExit(1)
        }
    }

    /// `sel._domainkey.example.com. IN TXT ( "v=DKIM1; ..." "..." )`, strings of at most 255.
    public static func zoneLine(domain: String, selector: String, key: DKIMPrivateKey) -> String {
        var record = Array(key.record.utf8)[...]
        var strings: [String] = []
        while !record.isEmpty {
            strings.append("\"" + String(decoding: record.prefix(250), as: UTF8.self) + "\"")
            record = record.dropFirst(250)
        }
        return "\(selector)._domainkey.\(domain.asciiLowercased). IN TXT ( " + strings.joined(separator: " ") + " )"
    }
}
