import MailAuth

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The DKIM private keys under `DATA_DIR/dkim/<domain>/<selector>.pem` (PKCS#8, mode 0600): one
/// file per selector, so keys can be rotated by adding a selector and retiring the old one.
public struct DKIMKeyStore: Sendable {
    public let directory: String

    public init(dataDirectory: String) {
        self.directory = dataDirectory + "/dkim"
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public func path(domain: String, selector: String) -> String {
        self.directory + "/" + domain.asciiLowercased + "/" + selector + ".pem"
    }

    /// Selectors are DNS labels (letters, digits, hyphens; dots for sub-selectors).
    public static func isValidSelector(_ selector: String) -> Bool {
        let labels = selector.split(separator: ".", omittingEmptySubsequences: false)
        return !selector.isEmpty && selector.utf8.count <= 63
            && labels.allSatisfy { label in
                !label.isEmpty && label.first != "-" && label.last != "-"
                    && label.unicodeScalars.allSatisfy {
                        $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-")
                    }
            }
    }

    /// Writes a new key; never replaces one.
    public func add(_ key: DKIMPrivateKey, domain: String, selector: String) throws(Failure) {
        guard Self.isValidSelector(selector) else {
            throw Failure(description: "'\(selector)' is not a valid selector (letters, digits and hyphens)")
        }
        let path = self.path(domain: domain, selector: selector)
        // The data directory too, when no server has run yet.
        var directory = ""
        for component in (self.directory + "/" + domain.asciiLowercased).split(separator: "/") {
            directory += "/" + component
            if mkdir(directory, 0o700) != 0, errno != EEXIST {
                throw Failure(description: "cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw Failure(description: "\(path) exists: choose another --selector (keys are never replaced)")
            }
            throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(key.pem.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Every key of `domain`, by selector name; RSA keys first (they sign first, so the
    /// Ed25519 signature, which older verifiers skip, comes on top of them).
    public func signers(for domain: String) throws(Failure) -> [DKIMSigner] {
        let folder = self.directory + "/" + domain.asciiLowercased
        guard let handle = opendir(folder) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".pem") { names.append(String(name.dropLast(4))) }
        }
        var signers: [DKIMSigner] = []
        for selector in names.sorted() {
            let path = folder + "/" + selector + ".pem"
            guard let text = Self.contents(of: path) else { throw Failure(description: "cannot read \(path)") }
            do {
                signers.append(DKIMSigner(domain: domain, selector: selector, key: try DKIMPrivateKey(pem: text)))
            } catch {
                throw Failure(description: "\(path) is not a usable DKIM key: \(error)")
            }
        }
        return signers.sorted { ($0.key.kind == .rsa ? 0 : 1) < ($1.key.kind == .rsa ? 0 : 1) }
    }

    static func contents(of path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            data += buffer[0..<count]
            if data.count > 1_000_000 { return nil }
        }
        return String(decoding: data, as: UTF8.self)
    }
}
