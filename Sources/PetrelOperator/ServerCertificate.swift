import Foundation
import Logging
import MailStore
import PetrelConfiguration
import SMTPServer

/// The server's certificate: the configured PEM files, or a self-signed certificate for the host
/// name that is made once under `DATA_DIR/tls/` when none is configured (by `petrel init`, or by
/// the server's first start).
public enum ServerCertificate {
    /// The files to load: the configured ones, or the self-signed pair (made if missing).
    public static func files(for configuration: Configuration, logger: Logger) throws -> Configuration.TLSFiles {
        if let files = configuration.tls { return files }
        let files = Configuration.TLSFiles(
            certificate: configuration.files.selfSignedCertificate,
            key: configuration.files.selfSignedKey
        )
        if !FileManager.default.fileExists(atPath: files.certificate)
            || !FileManager.default.fileExists(atPath: files.key)
        {
            try createDirectories(configuration.files.tls)
            try SelfSignedCertificate(hostname: configuration.hostname).write(to: files)
            logger.warning(
                "made a self-signed certificate; set [tls] certificate and key for one that clients trust",
                metadata: ["certificate": "\(files.certificate)", "hostname": "\(configuration.hostname)"]
            )
        } else {
            logger.warning(
                "using the self-signed certificate; set [tls] certificate and key for one that clients trust",
                metadata: ["certificate": "\(files.certificate)"]
            )
        }
        return files
    }
}

extension SelfSignedCertificate {
    /// Writes the pair, the key readable by its owner only from its first moment.
    public func write(to files: Configuration.TLSFiles) throws {
        try SecretFile.write(self.privateKeyPEM, to: files.key)
        try SecretFile.write(self.certificatePEM, to: files.certificate)
    }
}
