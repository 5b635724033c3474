import Foundation
import Logging
import NIOSSL
import NIOSupport
import PetrelConfiguration
import SMTPServer
import ServiceLifecycle
import UnixSignals

/// The server's TLS context, from the certificate files `ServerCertificate` finds or makes.
enum TLSSetup {
    /// TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3's suites all qualify.
    static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A TLS context from PEM files: TLS 1.2 and 1.3 only, forward-secret suites only.
    static func context(_ files: Configuration.TLSFiles) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        } catch {
            throw Failure(description: "cannot read the certificate \(files.certificate): \(error)")
        }
        guard !chain.isEmpty else { throw Failure(description: "no certificate in \(files.certificate)") }
        do {
            key = try NIOSSLPrivateKey(file: files.key, format: .pem)
        } catch {
            throw Failure(description: "cannot read the private key \(files.key): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.cipherSuites = self.cipherSuites
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure(
                description:
                    "the certificate \(files.certificate) and key \(files.key) do not make a TLS context: \(error)"
            )
        }
    }
}

/// Reloads the certificate and key on SIGHUP (after certbot and friends renew them), keeping the
/// old ones if the new files are broken. Connections already in TLS are not touched.
struct TLSReloader: Service {
    let files: Configuration.TLSFiles
    let provider: TLSContextProvider
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            self.reload()
        }
    }

    func reload() {
        do {
            self.provider.replace(with: try TLSSetup.context(self.files))
            self.logger.notice("reloaded the TLS certificate", metadata: ["certificate": "\(self.files.certificate)"])
        } catch {
            self.logger.error("TLS reload failed; keeping the previous certificate", metadata: ["error": "\(error)"])
        }
    }
}
