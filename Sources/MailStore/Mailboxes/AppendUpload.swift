import NIOCore
import NIOPosix
import PetrelSystem

/// An APPEND's message as it streams in: written to a file in `incoming/` (LF line ends, as the
/// Maildir keeps them) block by block on the store's threads, so that a message of any size
/// costs a connection no more memory than one block. `MailAccount.append(_:upload:...)` renames
/// the finished file into the folder; an upload never finished is removed (`abandon`), and what
/// a crash leaves in `incoming/` is removed at the next start, never having been acknowledged.
///
/// Used by one task at a time (its connection's).
public final class AppendUpload: @unchecked Sendable {
    private let file: SpoolFile
    private let threadPool: NIOThreadPool
    /// The first failure: later blocks are not written, and the APPEND gets NO.
    public private(set) var failure: MailboxError?
    private var finished = false

    init(path: String, threadPool: NIOThreadPool) throws(StoreError) {
        self.file = try SpoolFile(path: path, unixLineEnds: true)
        self.threadPool = threadPool
    }

    var path: String { self.file.path }

    public func write(_ block: ByteBuffer) async {
        guard self.failure == nil else { return }
        let file = self.file
        await self.run { () throws(StoreError) in try file.write(block, final: false) }
    }

    /// The last octets are written and the file synced: ready for `MailAccount.append`.
    public func finish() async {
        guard self.failure == nil, !self.finished else { return }
        self.finished = true
        let file = self.file
        await self.run { () throws(StoreError) in
            try file.write(ByteBuffer(), final: true)
            try file.finish()
        }
    }

    /// Removes the file (the APPEND failed, or its connection ended).
    public func abandon() {
        self.file.abandon()
    }

    private func run(_ body: @escaping @Sendable () throws(StoreError) -> Void) async {
        do {
            let result = try await self.threadPool.runIfActive { () -> StoreError? in
                do throws(StoreError) {
                    try body()
                    return nil
                } catch {
                    return error
                }
            }
            if let result { self.failure = .storage(result) }
        } catch {
            self.failure = .storage(.io(operation: "write", path: self.path, errno: ECANCELED))
        }
    }
}
