import Foundation
import NIOSSL
import SwiftASN1
import X509

/// Checks a server's certificate chain against trust roots and the host name we meant to reach
/// (RFC 5280 path validation, RFC 6125 names). For opportunistic TLS the answer is only
/// recorded; a smarthost must pass it.
public struct CertificateVerifier: Sendable {
    let roots: CertificateStore
    /// Certificates trusted as they are (a relay's self-signed certificate in `ca_file`): the
    /// name and dates are still checked.
    let pinned: [Certificate]

    /// The system's trust roots (`/etc/ssl/certs` and friends).
    public init() {
        self.roots = CertificateStore.systemTrustRoots
        self.pinned = []
    }

    /// Only these roots (a private CA), or these server certificates themselves.
    public init(roots: [Certificate]) {
        self.roots = CertificateStore(roots)
        self.pinned = roots
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
        if self.pinned.contains(leaf) {
            let now = Date()
            guard leaf.notValidBefore <= now, now <= leaf.notValidAfter else { return "the certificate has expired" }
            var names = Verifier(rootCertificates: CertificateStore([leaf])) {
                PinnedPolicy(leaf: leaf, names: ServerIdentityPolicy(serverHostname: hostname, serverIP: nil))
            }
            if case .validCertificate = await names.validate(leaf: leaf, intermediates: CertificateStore()) {
                return nil
            }
            return "the certificate does not name \(hostname)"
        }
        var verifier = Verifier(rootCertificates: self.roots) {
            RFC5280Policy()
            ServerIdentityPolicy(serverHostname: hostname, serverIP: nil)
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst())) {
        case .validCertificate:
            return nil
        case .couldNotValidate(let failures):
            if let failure = failures.first { return Self.shortened("\(failure.policyFailureReason)", leaf) }
            if leaf.issuer == leaf.subject { return "self-signed certificate" }
            return "no chain to a trusted root"
        }
    }

    /// Failure reasons print whole certificates; the subject says enough.
    static func shortened(_ reason: String, _ leaf: Certificate) -> String {
        guard let start = reason.range(of: " Certificate("), let end = reason.lastIndex(of: ")") else { return reason }
        return reason[..<start.lowerBound] + " (\(leaf.subject))" + reason[reason.index(after: end)...]
    }
}

/// For a pinned certificate: only the name is checked (it is its own authority, so RFC 5280's
/// CA rules do not apply); its critical extensions are taken as understood.
struct PinnedPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier]
    var names: ServerIdentityPolicy

    init(leaf: Certificate, names: ServerIdentityPolicy) {
        self.verifyingCriticalExtensions = leaf.extensions.filter(\.critical).map(\.oid)
        self.names = names
    }

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        self.names.chainMeetsPolicyRequirements(chain: chain)
    }
}
