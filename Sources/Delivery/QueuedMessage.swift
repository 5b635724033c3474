import MailAuth
import MailCore
import MailStore
import NIOCore
import SMTPClient

/// A queued message on its way out, read from the queue in blocks: our DKIM signatures first,
/// then its header fields without Return-Path (RFC 5321 §4.4: that is for the final delivery to
/// add), then the rest of the content as it is.
struct QueuedMessage: OutgoingMessage {
    let queue: any QueueStore
    let id: String
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
        _ id: String,
        in queue: any QueueStore,
        timestamp: Int,
        signers: (HeaderSection) -> [DKIMSigner]
    ) async throws -> QueuedMessage {
        let file = try await queue.content(of: id)
        defer { file.close() }
        var scanner = MessageScanner(now: timestamp, dkim: false)
        var offset = 0
        while scanner.headerLength == nil, !scanner.headerTooLarge {
            let block = try await file.read(at: offset, count: Self.blockSize)
            if block.isEmpty { break }
            scanner.append(block)
            offset += block.count
        }
        guard !scanner.headerTooLarge else {
            // Not ours (the server refuses such headers); sent as it is, unsigned.
            return QueuedMessage(
                queue: queue,
                id: id,
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
                let block = try await file.read(at: position, count: Self.blockSize)
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
            queue: queue,
            id: id,
            header: header,
            head: head,
            bodyOffset: headerLength,
            size: head.count + file.size - headerLength
        )
    }

    func stream(into write: (ByteBuffer) async throws -> Void) async throws {
        if !self.head.isEmpty { try await write(ByteBuffer(bytes: self.head)) }
        let file = try await self.queue.content(of: self.id)
        defer { file.close() }
        var position = self.bodyOffset
        while true {
            let block = try await file.read(at: position, count: Self.blockSize)
            if block.isEmpty { return }
            position += block.count
            try await write(ByteBuffer(bytes: block))
        }
    }
}
