import Foundation
import NIOSSL
import SwiftASN1
import X509

/// Checks a server's certificate chain against trust roots and the host name we meant to reach
/// (RFC 5280 path validation, RFC 6125 names). For opportunistic TLS the answer is only
/// recorded; a smarthost must pass it.
public struct CertificateVerifier: Sendable {
    let roots: CertificateStore

    /// The system's trust roots (`/etc/ssl/certs` and friends).
    public init() {
        self.roots = CertificateStore.systemTrustRoots
    }

    /// Only these roots (a private CA, tests).
    public init(roots: [Certificate]) {
        self.roots = CertificateStore(roots)
    }

    /// Reads PEM certificates to trust.
    public init(pemFile path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let documents = try PEMDocument.parseMultiple(pemString: text)
        self.init(roots: try documents.map { try Certificate(pemDocument: $0) })
    }

    /// nil when the chain is trusted and names `hostname`; otherwise why not.
    public func verify(_ chain: [NIOSSLCertificate], hostname: String) async -> String? {
        let certificates: [Certificate]
        do {
            certificates = try chain.map { try Certificate(derEncoded: $0.toDERBytes()) }
        } catch {
            return "unreadable certificate: \(error)"
        }
        guard let leaf = certificates.first else { return "no certificate" }
        var verifier = Verifier(rootCertificates: self.roots) {
            RFC5280Policy(validationTime: Date())
            ServerIdentityPolicy(serverHostname: hostname, serverIP: nil)
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst())) {
        case .validCertificate:
            return nil
        case .couldNotValidate(let failures):
            if let failure = failures.first { return "\(failure.policyFailureReason)" }
            if leaf.issuer == leaf.subject { return "self-signed certificate" }
            return "no chain to a trusted root"
        }
    }
}
