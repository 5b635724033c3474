import CPetrelSystem
import NIOCore
import NIOPosix
import PetrelSystem
import Synchronization

/// Where received messages go, durably: local mailboxes (Maildir) and the outbound queue. All
/// disk work runs on a thread pool, never on an event loop.
///
/// ```
/// DATA_DIR/incoming/   messages being received (the role of Maildir's tmp/)
/// DATA_DIR/mail/       one Maildir per mailbox
/// DATA_DIR/queue/      messages for other servers, with their envelopes
/// ```
///
/// A message is written while it arrives to `incoming/`: once with LF line ends when it has local
/// mailboxes (the Unix and Maildir convention, as Postfix's virtual(8) and Dovecot's LDA write),
/// and once as received, with CRLF, when it goes to other servers (it will be relayed as it came).
/// Nothing is lost either way: the server refuses bare CR and LF. `commit` makes everything
/// durable before it returns, and only then does the server say 250.
///
/// Why `incoming/` and not each Maildir's `tmp/`: a message is written once for all its mailboxes,
/// and after a crash everything in `incoming/` is ours to delete, while a Maildir's `tmp/` is
/// shared with other writers (an IMAP server saving drafts). Links and renames need `incoming/`,
/// `mail/` and `queue/` on one file system, which `prepare` checks.
public final class MessageStore: Sendable {
    public let dataDirectory: String
    public let incomingDirectory: String
    public let maildirs: MaildirStore
    public let queue: OutboundQueue
    /// Where `petrel sendmail` leaves messages for the server to queue.
    public let pickupDirectory: String
    let threadPool: NIOThreadPool
    let groupCommit: GroupCommit
    /// Numbers each local delivery's spool file, so two deliveries of one message never share one.
    private let deliveries = Atomic<Int>(0)

    public init(dataDirectory: String, hostname: String, threadPool: NIOThreadPool) {
        let layout = DataDirectory(dataDirectory)
        self.dataDirectory = dataDirectory
        self.incomingDirectory = layout.incoming
        self.maildirs = MaildirStore(mailRoot: layout.mail, hostname: hostname)
        self.queue = OutboundQueue(directory: layout.queue)
        self.pickupDirectory = layout.pickup
        self.threadPool = threadPool
        self.groupCommit = GroupCommit(threadPool: threadPool)
    }

    /// The queue as the runner works it.
    public var queueStore: EmbeddedQueue {
        EmbeddedQueue(files: self.queue, pickup: self.pickupDirectory, threadPool: self.threadPool)
    }

    /// What `prepare` found.
    public struct Preparation: Hashable, Sendable {
        /// Files of messages an earlier run never acknowledged, removed.
        public var removedIncoming = 0
        public var queue = OutboundQueue.Recovery()
    }

    /// Creates the directories, checks they share a file system, and removes what an earlier run
    /// left unfinished (never acknowledged, so never promised). The caller must hold the data
    /// directory lock.
    public func prepare() async throws -> Preparation {
        try await self.threadPool.runIfActive { [self] in
            try POSIXFile.makeDirectory(self.dataDirectory)
            try POSIXFile.makeDirectory(self.maildirs.mailRoot)
            try POSIXFile.makeDirectory(self.incomingDirectory)
            var preparation = Preparation()
            preparation.queue = try self.queue.recover(pickup: self.pickupDirectory)
            let device = try POSIXFile.deviceID(self.incomingDirectory)
            for directory in [self.maildirs.mailRoot, self.queue.directory] {
                guard try POSIXFile.deviceID(directory) == device else {
                    throw StoreError.io(operation: "check (must be on one file system)", path: directory, errno: EXDEV)
                }
            }
            let leftovers = try POSIXFile.listDirectory(self.incomingDirectory)
            for name in leftovers { POSIXFile.remove(self.incomingDirectory + "/" + name) }
            preparation.removedIncoming = leftovers.count
            return preparation
        }
    }

    /// Starts a message. Its header fields (trace and authentication results, known only at the
    /// end) are given to `commit`. Nothing touches the disk yet: a message that fits in one block
    /// (most) is written, synced and published in its commit's batch, with no other thread hop.
    /// - Parameters:
    ///   - local: it has local mailboxes (a Maildir copy is written).
    ///   - queued: it has recipients at other servers (a queue copy is written).
    public func beginMessage(id: String, local: Bool, queued: Bool) -> IncomingMessageFile {
        IncomingMessageFile(store: self, id: id, local: local, queued: queued)
    }

    /// The spool files of a message in `incoming/`: none left behind when one cannot be made.
    func spoolFiles(id: String, local: Bool, queued: Bool) throws(StoreError) -> [SpoolFile] {
        var files: [SpoolFile] = []
        do {
            if local { files.append(try SpoolFile(path: self.incomingDirectory + "/\(id)", unixLineEnds: true)) }
            if queued { files.append(try SpoolFile(path: self.incomingDirectory + "/\(id).eml", unixLineEnds: false)) }
        } catch {
            for file in files { file.abandon() }
            throw error
        }
        return files
    }
}

extension MessageStore {
    /// Delivers a message (CRLF line ends) into local mailboxes, with LF line ends like every
    /// Maildir copy; durable when it returns. Written once to `incoming/`, then linked into each.
    /// The spool file's name is this call's own (what a crash leaves, `prepare` removes).
    public func deliver(_ content: any MessageContent, id: String, to mailboxes: [String]) async throws(StoreError) {
        let number = self.deliveries.wrappingAdd(1, ordering: .relaxed).newValue
        let spoolPath = self.incomingDirectory + "/\(id).local.\(number)"
        let spool = try await self.onThreadPool { try SpoolFile(path: spoolPath, unixLineEnds: true) }
        do throws(StoreError) {
            var offset = 0
            while true {
                let block: [UInt8]
                do {
                    block = try await content.read(at: offset, count: 65_536)
                } catch {
                    throw (error as? StoreError) ?? StoreError.io(operation: "read", path: "message \(id)", errno: EIO)
                }
                offset += block.count
                try await self.onThreadPool { try spool.write(ByteBuffer(bytes: block), final: block.isEmpty) }
                if block.isEmpty { break }
            }
            try await self.onThreadPool {
                try spool.finish()
                _ = try self.maildirs.deliver(spoolPath, id: id, size: spool.size, to: mailboxes)
                POSIXFile.remove(spoolPath)
            }
        } catch {
            // On the pool, unless it has stopped: then here, as nothing else will.
            do throws(StoreError) { try await self.onThreadPool { spool.abandon() } } catch { spool.abandon() }
            throw error
        }
    }

    /// Runs on the thread pool; anything but a `StoreError` (the pool shut down) becomes one.
    private func onThreadPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws(StoreError) -> T {
        do {
            return try await self.threadPool.runIfActive { try body() }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.io(operation: "deliver", path: self.incomingDirectory, errno: ECANCELED)
        }
    }
}

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
            return GroupCommit.Publication(
                directories: directories,
                undo: {
                    for path in paths { POSIXFile.remove(path) }
                    if queuedToo { store.queue.unstage(id) }
                },
                done: {
                    for file in files where file.unixLineEnds { POSIXFile.remove(file.path) }
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

/// One file in `incoming/`, written in blocks from the thread pool. Not thread-safe by itself:
/// its owner (`IncomingMessageFile`, an actor) never uses it from two places at once.
final class SpoolFile: @unchecked Sendable {
    let path: String
    let unixLineEnds: Bool
    private var fd: Int32?
    private var converter = LineEndingConverter()
    private(set) var size = 0

    init(path: String, unixLineEnds: Bool) throws(StoreError) {
        self.path = path
        self.unixLineEnds = unixLineEnds
        self.fd = try POSIXFile.createExclusive(path)
    }

    func write(_ block: ByteBuffer, final: Bool) throws(StoreError) {
        guard let fd = self.fd else { throw StoreError.io(operation: "write", path: self.path, errno: EBADF) }
        var bytes = block
        if self.unixLineEnds {
            bytes = ByteBuffer()
            self.converter.convert(block, into: &bytes)
            if final { self.converter.finish(into: &bytes) }
        }
        self.size += bytes.readableBytes
        try bytes.withUnsafeReadableBytes { raw throws(StoreError) in try POSIXFile.writeAll(fd, raw, path: self.path) }
    }

    /// Puts `header` in front of what was written: a new file gets the header and then the old
    /// content (copied in the kernel), and takes the old one's name.
    func prepend(_ header: ByteBuffer) throws(StoreError) {
        guard let old = self.fd else { throw StoreError.io(operation: "write", path: self.path, errno: EBADF) }
        var bytes = header
        if self.unixLineEnds {
            var converter = LineEndingConverter()
            bytes = ByteBuffer()
            converter.convert(header, into: &bytes)
            converter.finish(into: &bytes)
        }
        let temporary = self.path + ".h"
        let fd = try POSIXFile.createExclusive(temporary)
        do {
            try bytes.withUnsafeReadableBytes { raw throws(StoreError) in
                try POSIXFile.writeAll(fd, raw, path: temporary)
            }
            try POSIXFile.appendContents(of: self.path, to: fd, path: temporary)
            try POSIXFile.rename(temporary, self.path)
        } catch {
            _ = try? POSIXFile.closeFile(fd, path: temporary)
            POSIXFile.remove(temporary)
            throw error
        }
        _ = try? POSIXFile.closeFile(old, path: self.path)
        self.fd = fd
        self.size += bytes.readableBytes
    }

    /// Starts writing the file's data back, without waiting: a batch starts all its files this
    /// way before syncing each, so that their write-back overlaps. Makes nothing durable.
    func startWriteBack() {
        if let fd = self.fd { _ = petrel_start_write_back(fd) }
    }

    /// Syncs and closes the file.
    func finish() throws(StoreError) {
        guard let fd = self.fd else { throw StoreError.io(operation: "sync", path: self.path, errno: EBADF) }
        self.fd = nil
        do {
            try POSIXFile.syncData(fd, path: self.path)
        } catch {
            _ = try? POSIXFile.closeFile(fd, path: self.path)
            throw error
        }
        try POSIXFile.closeFile(fd, path: self.path)
    }

    /// Closes (if open) and removes the file.
    func abandon() {
        if let fd = self.fd { _ = try? POSIXFile.closeFile(fd, path: self.path) }
        self.fd = nil
        POSIXFile.remove(self.path)
    }
}
