import MailAuth
import MailCore
import NIOCore
import NIOPosix
import SMTPClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A queued message on its way out, read from its file in blocks on the thread pool: our
/// DKIM signatures first, then its header fields without Return-Path (RFC 5321 §4.4: that is
/// for the final delivery to add), then the rest of the file as it is.
struct QueuedMessage: OutgoingMessage {
    let path: String
    let threadPool: NIOThreadPool
    /// The header section as it will be sent (no Return-Path, no signatures).
    let header: HeaderSection
    /// What is sent before the file's content from `bodyOffset` on.
    let head: [UInt8]
    /// Where the empty line after the header section starts.
    let bodyOffset: Int
    /// Octets that will be sent (before dot-stuffing): for SIZE.
    let size: Int

    static let blockSize = 65_536

    /// Reads the header section, and hashes the body when there is someone to sign for.
    /// - Parameter signers: who signs a message with this header section (none: not ours).
    static func open(
        path: String,
        threadPool: NIOThreadPool,
        timestamp: Int,
        signers: (HeaderSection) -> [DKIMSigner]
    ) async throws -> QueuedMessage {
        let file = try await threadPool.runIfActive { try ReadOnlyFile(path: path) }
        defer { file.close() }
        var scanner = MessageScanner(now: timestamp, dkim: false)
        var offset = 0
        while scanner.headerLength == nil, !scanner.headerTooLarge {
            let block = try await threadPool.runIfActive { [offset] in try file.read(at: offset, count: Self.blockSize)
            }
            if block.isEmpty { break }
            scanner.append(block)
            offset += block.count
        }
        guard !scanner.headerTooLarge else {
            // Not ours (the server refuses such headers); sent as it is, unsigned.
            return QueuedMessage(
                path: path,
                threadPool: threadPool,
                header: HeaderSection(fields: []),
                head: [],
                bodyOffset: 0,
                size: file.size
            )
        }
        let headerLength = scanner.headerLength ?? file.size
        let scanned = scanner.finish()
        let header = HeaderSection(fields: (scanned.header?.fields ?? []).filter { !$0.hasName("Return-Path") })
        var head: [UInt8] = []
        let signing = signers(header)
        if !signing.isEmpty {
            var hasher = BodyHasher(BodyHashRequest(canonicalization: .relaxed))
            // The body starts after the empty line that ends the header section.
            var position = headerLength
            var skip = 2
            while true {
                let block = try await threadPool.runIfActive { [position] in
                    try file.read(at: position, count: Self.blockSize)
                }
                if block.isEmpty { break }
                position += block.count
                var bytes = block[...]
                while skip > 0, let first = bytes.first, first == 0x0D || first == 0x0A {
                    skip -= first == 0x0A ? 2 : 1
                    bytes = bytes.dropFirst()
                }
                skip = 0
                hasher.update(bytes)
            }
            let bodyHash = hasher.finalize()
            for signer in signing {
                head =
                    Array(try signer.signatureField(header: header, bodyHash: bodyHash, timestamp: timestamp).utf8)
                    + head
            }
        }
        head += header.bytes
        return QueuedMessage(
            path: path,
            threadPool: threadPool,
            header: header,
            head: head,
            bodyOffset: headerLength,
            size: head.count + file.size - headerLength
        )
    }

    func stream(into write: (ByteBuffer) async throws -> Void) async throws {
        if !self.head.isEmpty { try await write(ByteBuffer(bytes: self.head)) }
        let path = self.path
        let file = try await self.threadPool.runIfActive { try ReadOnlyFile(path: path) }
        defer { file.close() }
        var position = self.bodyOffset
        while true {
            let block = try await self.threadPool.runIfActive { [position] in
                try file.read(at: position, count: Self.blockSize)
            }
            if block.isEmpty { return }
            position += block.count
            try await write(ByteBuffer(bytes: block))
        }
    }
}

/// A file opened for reading, used from one task at a time.
final class ReadOnlyFile: @unchecked Sendable {
    let path: String
    let fd: Int32
    let size: Int

    init(path: String) throws {
        self.path = path
        self.fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard self.fd >= 0 else { throw FileFailure(path: path, errno: errno) }
        var status = stat()
        guard fstat(self.fd, &status) == 0 else {
            let code = errno
            Glibc.close(self.fd)
            throw FileFailure(path: path, errno: code)
        }
        self.size = Int(status.st_size)
    }

    func read(at offset: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(self.fd, $0.baseAddress, count, off_t(offset)) }
        guard read >= 0 else { throw FileFailure(path: self.path, errno: errno) }
        bytes.removeLast(count - read)
        return bytes
    }

    func close() {
        Glibc.close(self.fd)
    }
}

struct FileFailure: Error, CustomStringConvertible {
    var path: String
    var errno: Int32
    var description: String { "\(self.path): \(String(cString: strerror(self.errno)))" }
}
