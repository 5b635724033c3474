import NIOPosix
import PetrelSystem

/// The outbound queue as the queue runner sees it: the seam a storage engine implements.
/// `EmbeddedQueue` (envelope and message files in `queue/`) is the embedded engine; a
/// PostgreSQL engine will be another, and the runner's tests use one in memory. The runner
/// reaches the queue only through this.
///
/// Every write is durable when it returns: a recipient recorded as delivered is never sent again.
public protocol QueueStore: Sendable {
    /// Every entry, oldest first (at start-up).
    func entries() async throws -> [QueueEntry]
    /// The entry, nil when there is none (removed meanwhile); throws when it cannot be read now.
    func entry(_ id: String) async throws -> QueueEntry?
    /// Records a changed entry (attempts, results, reports sent).
    func update(_ entry: QueueEntry) async throws(StoreError)
    /// Adds a message of our own (a delivery report).
    func add(message: [UInt8], entry: QueueEntry) async throws(StoreError)
    func remove(_ id: String) async throws(StoreError)
    /// A queued message's content, to read from.
    func content(of id: String) async throws -> any MessageContent
    /// Takes in what `petrel sendmail` left for the queue; returns the ids taken.
    func adoptPickedUp() async throws(StoreError) -> [String]
    /// Requests from `petrel queue` (`<id>.<request>` names, `all.retry`).
    func pendingRequests() async throws(StoreError) -> [String]
    /// Marks a request done.
    func finishRequest(_ name: String) async
}

/// The embedded queue: `OutboundQueue`'s files, worked on the thread pool.
public struct EmbeddedQueue: QueueStore {
    public let files: OutboundQueue
    public let pickup: String
    let threadPool: NIOThreadPool

    public init(files: OutboundQueue, pickup: String, threadPool: NIOThreadPool) {
        self.files = files
        self.pickup = pickup
        self.threadPool = threadPool
    }

    public func entries() async throws -> [QueueEntry] {
        try await self.threadPool.runIfActive { try self.files.entries() }
    }

    public func entry(_ id: String) async throws -> QueueEntry? {
        try await self.threadPool.runIfActive {
            guard access(self.files.envelopePath(id), F_OK) == 0 else { return nil }
            return try self.files.entry(id)
        }
    }

    public func update(_ entry: QueueEntry) async throws(StoreError) {
        try await self.run { try self.files.update(entry) }
    }

    public func add(message: [UInt8], entry: QueueEntry) async throws(StoreError) {
        try await self.run { try self.files.add(message: message, entry: entry) }
    }

    public func remove(_ id: String) async throws(StoreError) {
        try await self.run { try self.files.remove(id) }
    }

    public func content(of id: String) async throws -> any MessageContent {
        let path = self.files.messagePath(id)
        let file = try await self.threadPool.runIfActive { try ReadOnlyFile(path: path) }
        return FileContent(file: file, threadPool: self.threadPool)
    }

    public func adoptPickedUp() async throws(StoreError) -> [String] {
        try await self.run { try self.files.adopt(from: self.pickup) }
    }

    public func pendingRequests() async throws(StoreError) -> [String] {
        try await self.run { try self.files.pendingRequests() }
    }

    public func finishRequest(_ name: String) async {
        self.files.finishRequest(name)
    }

    /// Runs on the thread pool; anything but a `StoreError` (the pool shut down) becomes one.
    private func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws(StoreError) -> T {
        do {
            return try await self.threadPool.runIfActive { try body() }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.io(operation: "queue", path: self.files.directory, errno: ECANCELED)
        }
    }
}

/// A queue file read on the thread pool.
struct FileContent: MessageContent {
    let file: ReadOnlyFile
    let threadPool: NIOThreadPool

    var size: Int { self.file.size }

    func read(at offset: Int, count: Int) async throws -> [UInt8] {
        try await self.threadPool.runIfActive { try self.file.read(at: offset, count: count) }
    }

    func close() {
        self.file.close()
    }
}

/// A file opened for reading, used from one task at a time.
final class ReadOnlyFile: @unchecked Sendable {
    let path: String
    let fd: Int32
    let size: Int

    init(path: String) throws(StoreError) {
        self.path = path
        self.fd = open(path, O_RDONLY | O_CLOEXEC)
        guard self.fd >= 0 else { throw StoreError(operation: "open", path: path, errno: errno) }
        var status = stat()
        guard fstat(self.fd, &status) == 0 else {
            let code = errno
            closeDescriptor(self.fd)
            throw StoreError(operation: "stat", path: path, errno: code)
        }
        self.size = Int(status.st_size)
    }

    func read(at offset: Int, count: Int) throws(StoreError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(self.fd, $0.baseAddress, count, off_t(offset)) }
        guard read >= 0 else { throw StoreError(operation: "read", path: self.path, errno: errno) }
        bytes.removeLast(count - read)
        return bytes
    }

    func close() {
        closeDescriptor(self.fd)
    }
}

/// `close(2)`, for types whose own `close()` hides it.
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
