import MailCore
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Delivers messages into Maildirs under `DATA_DIR/mail/<address>/` durably.
///
/// A message is written once to `DATA_DIR/incoming/` (the role of Maildir's `tmp/`), synced,
/// then hard-linked into `new/` of every recipient mailbox, and every `new/` directory is synced:
/// only then does `commit` return, and only then does the server say 250. A file appears in
/// `new/` complete or not at all, because a link is atomic and happens after the data is on disk.
///
/// Why `incoming/` and not each Maildir's `tmp/`: a multi-recipient message is written once, and
/// after a crash everything in `incoming/` is ours to delete, while a Maildir's `tmp/` is shared
/// with other writers (an IMAP server saving drafts) that we must not disturb. Hard links need
/// `incoming/` and `mail/` on one file system, which `prepare` checks.
///
/// Files use LF line endings, the Unix and Maildir convention (Postfix's virtual(8) and Dovecot's
/// LDA write the same). Nothing is lost: the server refuses bare CR and LF, so every LF stands
/// for exactly one CRLF received.
public final class MaildirStore: Sendable {
    public let dataDirectory: String
    public let mailRoot: String
    public let incomingDirectory: String
    let hostnameForNames: String
    let threadPool: NIOThreadPool
    private let knownMaildirs = Mutex<Set<String>>([])
    private let sequence = Atomic<UInt64>(0)

    public init(dataDirectory: String, hostname: String, threadPool: NIOThreadPool) {
        self.dataDirectory = dataDirectory
        self.mailRoot = dataDirectory + "/mail"
        self.incomingDirectory = dataDirectory + "/incoming"
        // maildir(5): "/" and ":" in the host part are written as \057 and \072.
        self.hostnameForNames = hostname.replacingAll("/", with: "\\057").replacingAll(":", with: "\\072")
        self.threadPool = threadPool
    }

    /// Creates the directories, checks they share a file system, and removes what an earlier run
    /// left unfinished in `incoming/` (never acknowledged, so never promised). Returns how many
    /// files were removed. The caller must hold the data directory lock.
    public func prepare() async throws -> Int {
        try await self.threadPool.runIfActive { [self] in
            try POSIXFile.makeDirectory(self.dataDirectory)
            try POSIXFile.makeDirectory(self.mailRoot)
            try POSIXFile.makeDirectory(self.incomingDirectory)
            guard try POSIXFile.deviceID(self.mailRoot) == POSIXFile.deviceID(self.incomingDirectory) else {
                throw StoreError.io(operation: "check", path: self.mailRoot, errno: EXDEV)
            }
            let leftovers = try POSIXFile.listDirectory(self.incomingDirectory)
            for name in leftovers { POSIXFile.remove(self.incomingDirectory + "/" + name) }
            return leftovers.count
        }
    }

    /// The Maildir of a mailbox address (already canonical: lower case, validated by Accounts).
    public func maildirPath(for address: String) -> String {
        self.mailRoot + "/" + address
    }

    /// Starts a message whose file begins with `header` (trace fields, CRLF or LF endings).
    public func createMessage(id: String, header: String) async throws(StoreError) -> MaildirMessage {
        let path = self.incomingDirectory + "/" + id
        do {
            let fd = try await self.threadPool.runIfActive { try POSIXFile.createExclusive(path) }
            let message = MaildirMessage(store: self, id: id, path: path, fd: fd)
            await message.append(ByteBuffer(string: header))
            return message
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.io(operation: "create", path: path, errno: EIO)
        }
    }

    /// `time.M<usec>P<pid>Q<id>.<host>,S=<size>`: unique (the queue id is), and with the size
    /// Dovecot reads without a stat.
    func uniqueName(id: String, size: Int) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return "\(now.tv_sec).M\(now.tv_nsec / 1000)P\(getpid())Q\(id).\(self.hostnameForNames),S=\(size)"
    }

    /// Creates `mail/<address>/{tmp,new,cur}` once, syncing parents so the directories survive a crash.
    func ensureMaildir(for address: String) throws(StoreError) -> String {
        guard !address.isEmpty, !address.contains("/"), !address.hasPrefix("."), address.utf8.count <= 255 else {
            throw StoreError.invalidMailboxName(address)
        }
        let root = self.maildirPath(for: address)
        if self.knownMaildirs.withLock({ $0.contains(address) }) { return root }
        if try POSIXFile.makeDirectory(root) { try POSIXFile.syncDirectory(self.mailRoot) }
        var created = false
        for sub in ["tmp", "new", "cur"] {
            if try POSIXFile.makeDirectory(root + "/" + sub) { created = true }
        }
        if created { try POSIXFile.syncDirectory(root) }
        self.knownMaildirs.withLock { _ = $0.insert(address) }
        return root
    }

    func forgetMaildir(_ address: String) {
        self.knownMaildirs.withLock { _ = $0.remove(address) }
    }
}

/// One message being written. Used by one connection task at a time; an actor keeps that honest.
public actor MaildirMessage {
    public nonisolated let id: String
    let store: MaildirStore
    let path: String
    private var fd: Int32?
    private var pending = ByteBuffer()
    private var converter = LineEndingConverter()
    private var failure: StoreError?
    public private(set) var size = 0

    /// Content is written in blocks of this size; a connection holds at most this much in memory.
    static let blockSize = 65_536

    init(store: MaildirStore, id: String, path: String, fd: Int32) {
        self.store = store
        self.id = id
        self.path = path
        self.fd = fd
    }

    /// Adds content (CRLF line endings, as received).
    public func append(_ content: ByteBuffer) async {
        guard self.failure == nil, self.fd != nil else { return }
        self.converter.convert(content, into: &self.pending)
        if self.pending.readableBytes >= Self.blockSize {
            await self.writePending()
        }
    }

    private func writePending() async {
        guard let fd = self.fd, self.failure == nil, self.pending.readableBytes > 0 else { return }
        let block = self.pending
        self.pending = ByteBuffer()
        self.size += block.readableBytes
        let path = self.path
        do {
            try await self.store.threadPool.runIfActive {
                try block.withUnsafeReadableBytes { bytes throws(StoreError) in
                    try POSIXFile.writeAll(fd, bytes, path: path)
                }
            }
        } catch {
            self.failure = (error as? StoreError) ?? .io(operation: "write", path: path, errno: EIO)
        }
    }

    /// Makes the message durable in every mailbox. When this returns normally, the message is on
    /// disk in each `new/` directory and will survive a crash or power loss.
    /// - Parameter mailboxes: canonical mailbox addresses, each named once.
    /// - Returns: the path of the file in each mailbox.
    public func commit(to mailboxes: [String]) async throws(StoreError) -> [String] {
        self.converter.finish(into: &self.pending)
        await self.writePending()
        guard let fd = self.fd else { throw StoreError.io(operation: "commit", path: self.path, errno: EBADF) }
        self.fd = nil
        let path = self.path
        let store = self.store
        let id = self.id
        let size = self.size
        if let failure = self.failure {
            _ = try? POSIXFile.closeFile(fd, path: path)
            POSIXFile.remove(path)
            throw failure
        }
        do {
            return try await store.threadPool.runIfActive {
                do {
                    try POSIXFile.syncData(fd, path: path)
                    try POSIXFile.closeFile(fd, path: path)
                } catch {
                    POSIXFile.remove(path)
                    throw error
                }
                defer { POSIXFile.remove(path) }
                let name = store.uniqueName(id: id, size: size)
                var linked: [String] = []
                do {
                    var directories: [String] = []
                    for mailbox in mailboxes {
                        let destination = try Self.link(path, into: mailbox, name: name, store: store)
                        linked.append(destination)
                        directories.append(store.maildirPath(for: mailbox) + "/new")
                    }
                    for directory in directories { try POSIXFile.syncDirectory(directory) }
                    return linked
                } catch {
                    // Not acknowledged, so not promised: take back what was linked.
                    for destination in linked { POSIXFile.remove(destination) }
                    throw error
                }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.io(operation: "commit", path: path, errno: EIO)
        }
    }

    private static func link(
        _ path: String,
        into mailbox: String,
        name: String,
        store: MaildirStore
    )
        throws(StoreError) -> String
    {
        let root = try store.ensureMaildir(for: mailbox)
        let destination = root + "/new/" + name
        do {
            try POSIXFile.link(path, destination)
        } catch .io(_, _, ENOENT) {
            // The Maildir was removed behind our back (an operator cleaning up): make it again.
            store.forgetMaildir(mailbox)
            _ = try store.ensureMaildir(for: mailbox)
            try POSIXFile.link(path, destination)
        }
        return destination
    }

    /// Drops the message. Safe to call at any time, also after a failed commit.
    public func discard() async {
        guard let fd = self.fd else { return }
        self.fd = nil
        self.pending = ByteBuffer()
        let path = self.path
        _ = try? await self.store.threadPool.runIfActive {
            _ = try? POSIXFile.closeFile(fd, path: path)
            POSIXFile.remove(path)
        }
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
