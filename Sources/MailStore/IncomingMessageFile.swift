import NIOCore
import PetrelSystem

/// A message being written. Used by one connection task at a time; an actor keeps that honest.
public actor IncomingMessageFile {
    public nonisolated let id: String
    let store: MessageStore
    private let local: Bool
    private let queued: Bool
    /// Made when the first block is written; a message that never fills one has none until its
    /// commit's batch makes, writes and syncs them at once.
    private var files: [SpoolFile] = []
    private var pending = ByteBuffer()
    private var failure: StoreError?
    /// Whether a block went to disk already (then the header has to be put in front of it).
    private var wroteBlocks = false
    private var finished = false
    /// Octets received, CRLF line ends; the header given to `commit` is added then.
    public private(set) var size = 0

    /// Content is written in blocks of this size; a connection holds at most this much in memory.
    static let blockSize = 65_536

    init(store: MessageStore, id: String, local: Bool, queued: Bool) {
        self.store = store
        self.id = id
        self.local = local
        self.queued = queued
    }

    /// Adds content (CRLF line endings, as received).
    public func append(_ content: ByteBuffer) async {
        guard self.failure == nil, !self.finished, self.local || self.queued else { return }
        var content = content
        self.size += content.readableBytes
        self.pending.writeBuffer(&content)
        if self.pending.readableBytes >= Self.blockSize {
            await self.writePending(final: false)
        }
    }

    /// Writes what is pending (making the files first if need be); with `prepending`, then puts
    /// that header in front of the content.
    private func writePending(final: Bool, prepending header: ByteBuffer? = nil) async {
        guard self.failure == nil else { return }
        let block = self.pending
        self.pending = ByteBuffer()
        self.wroteBlocks = true
        let (store, id, local, queued, existing) = (self.store, self.id, self.local, self.queued, self.files)
        do {
            let (files, failure) = try await store.threadPool.runIfActive { () -> ([SpoolFile], StoreError?) in
                var files = existing
                do throws(StoreError) {
                    if files.isEmpty { files = try store.spoolFiles(id: id, local: local, queued: queued) }
                    for file in files { try file.write(block, final: final) }
                    if let header {
                        for file in files { try file.prepend(header) }
                    }
                    return (files, nil)
                } catch {
                    return (files, error)
                }
            }
            self.files = files
            self.failure = failure
        } catch {
            self.failure = .io(operation: "write", path: store.incomingDirectory + "/\(id)", errno: ECANCELED)
        }
    }

    /// Makes the message durable: delivered into every mailbox, and queued for the remote
    /// recipients. When this returns normally, it survives a crash or power loss.
    /// - Parameters:
    ///   - header: header fields to put before the content (CRLF line ends): the trace fields
    ///     and authentication results, known only now. Free for a message that still fits in
    ///     memory; a larger one is copied behind it in the kernel.
    ///   - mailboxes: canonical mailbox addresses, each named once (none when not local).
    ///   - folder: a Maildir++ folder (".Junk") to deliver into instead of the inbox.
    ///   - queueEntry: the queue envelope, when the message has remote recipients.
    public func commit(
        header: String,
        to mailboxes: [String],
        folder: String? = nil,
        queueEntry: QueueEntry?
    ) async throws(StoreError) {
        guard !self.finished else { throw StoreError.io(operation: "commit", path: self.id, errno: EINVAL) }
        self.finished = true
        let prefix = ByteBuffer(string: header)
        self.size += prefix.readableBytes
        let (store, id, local, queued) = (self.store, self.id, self.local, self.queued)
        let prepare: @Sendable () throws(StoreError) -> [SpoolFile]
        if self.wroteBlocks {
            // A large message: its last block and the header go from here; the batch syncs.
            await self.writePending(final: true, prepending: prefix.readableBytes > 0 ? prefix : nil)
            let files = self.files
            self.files = []
            if let failure = self.failure {
                await self.abandon(files)
                throw failure
            }
            prepare = { files }
        } else {
            var combined = prefix
            combined.writeBuffer(&self.pending)
            let content = combined
            prepare = { () throws(StoreError) in
                let files = try store.spoolFiles(id: id, local: local, queued: queued)
                do throws(StoreError) {
                    for file in files { try file.write(content, final: true) }
                } catch {
                    for file in files { file.abandon() }
                    throw error
                }
                return files
            }
        }
        let job = GroupCommit.Job(prepare: prepare) { files throws(StoreError) in
            var links: (paths: [String], directories: [String]) = ([], [])
            if let local = files.first(where: { $0.unixLineEnds }), !mailboxes.isEmpty {
                links = try store.maildirs.link(local.path, id: id, size: local.size, to: mailboxes, folder: folder)
            }
            var directories = links.directories
            var staged = false
            if var entry = queueEntry, let queued = files.first(where: { !$0.unixLineEnds }) {
                entry.size = queued.size
                do throws(StoreError) {
                    try store.queue.stage(file: queued.path, entry: entry)
                } catch {
                    // Not acknowledged, so not promised: take back the local deliveries.
                    for path in links.paths { POSIXFile.remove(path) }
                    throw error
                }
                staged = true
                directories.append(store.queue.directory)
            }
            let (paths, queuedToo) = (links.paths, staged)
            let localSize = links.paths.isEmpty ? 0 : files.first(where: { $0.unixLineEnds })?.size ?? 0
            return GroupCommit.Publication(
                directories: directories,
                undo: {
                    for path in paths { POSIXFile.remove(path) }
                    if queuedToo { store.queue.unstage(id) }
                },
                done: {
                    for file in files where file.unixLineEnds { POSIXFile.remove(file.path) }
                    for mailbox in mailboxes {
                        store.maildirs.usage.added(mailbox, bytes: localSize)
                        store.maildirs.changes.delivered(mailbox)
                    }
                }
            )
        }
        try await store.groupCommit.commit(job)
    }

    /// Drops the message. Safe to call at any time, also after a failed commit.
    public func discard() async {
        self.finished = true
        let files = self.files
        self.files = []
        self.pending = ByteBuffer()
        await self.abandon(files)
    }

    private func abandon(_ files: [SpoolFile]) async {
        guard !files.isEmpty else { return }
        _ = try? await self.store.threadPool.runIfActive {
            for file in files { file.abandon() }
        }
    }
}
