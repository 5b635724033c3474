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

    public func usage(of mailbox: String) async throws(StoreError) -> StorageUsage {
        let maildirs = self.maildirs
        return try await self.onThreadPool { try maildirs.usage(of: mailbox) }
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
