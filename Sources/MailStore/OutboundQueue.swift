import Foundation

/// One message waiting in the outbound queue: its envelope and per-recipient state. Stored as JSON
/// beside the message, versioned so later formats can read it.
public struct QueueEntry: Codable, Hashable, Sendable {
    public static let currentVersion = 1

    public var version: Int
    public var id: String
    /// Unix seconds.
    public var createdAt: Int64
    /// The reverse path without brackets; "" for the null path.
    public var sender: String
    public var recipients: [Recipient]
    /// Octets of the queued message file.
    public var size: Int
    public var smtpUTF8: Bool
    /// "7BIT" or "8BITMIME", as MAIL FROM said.
    public var body: String?
    /// The SASL identity that submitted it.
    public var authenticatedUser: String?

    public struct Recipient: Codable, Hashable, Sendable {
        public enum State: String, Codable, Sendable {
            case pending
            case delivered
            case failed
        }

        public var address: String
        public var state: State
        public var attempts: Int
        public var lastAttempt: Int64?
        public var lastError: String?

        public init(address: String) {
            self.address = address
            self.state = .pending
            self.attempts = 0
        }
    }

    public init(
        id: String,
        createdAt: Int64,
        sender: String,
        recipients: [String],
        smtpUTF8: Bool,
        body: String?,
        authenticatedUser: String?
    ) {
        self.version = Self.currentVersion
        self.id = id
        self.createdAt = createdAt
        self.sender = sender
        self.recipients = recipients.map(Recipient.init(address:))
        self.size = 0
        self.smtpUTF8 = smtpUTF8
        self.body = body
        self.authenticatedUser = authenticatedUser
    }
}

/// The durable outbound queue under `DATA_DIR/queue/`: `<id>.eml` holds the message as received
/// (CRLF line ends, trace fields on top), `<id>.envelope` its `QueueEntry`.
///
/// The envelope is written last, to `tmp/`, synced and renamed into place, then the directory is
/// synced: its appearance is the commit. A message file without an envelope was never
/// acknowledged and is removed at start-up, as is anything in `tmp/`. Blocking: run on a thread pool.
public struct OutboundQueue: Sendable {
    public let directory: String
    var temporary: String { self.directory + "/tmp" }
    var corrupt: String { self.directory + "/corrupt" }

    public init(directory: String) {
        self.directory = directory
    }

    func messagePath(_ id: String) -> String { self.directory + "/\(id).eml" }
    func envelopePath(_ id: String) -> String { self.directory + "/\(id).envelope" }

    /// What recovery found and did at start-up.
    public struct Recovery: Hashable, Sendable {
        public var entries = 0
        public var removedUnfinished = 0
        public var setAsideCorrupt = 0
    }

    /// Creates the directories and clears out what a crash left half-written.
    func recover() throws(StoreError) -> Recovery {
        for path in [self.directory, self.temporary, self.corrupt] { try POSIXFile.makeDirectory(path) }
        var recovery = Recovery()
        for name in try POSIXFile.listDirectory(self.temporary) {
            POSIXFile.remove(self.temporary + "/" + name)
            recovery.removedUnfinished += 1
        }
        let names = Set(try POSIXFile.listDirectory(self.directory))
        for name in names where name.hasSuffix(".eml") {
            let id = String(name.dropLast(4))
            if !names.contains("\(id).envelope") {
                POSIXFile.remove(self.messagePath(id))
                recovery.removedUnfinished += 1
            }
        }
        for name in names where name.hasSuffix(".envelope") {
            let id = String(name.dropLast(9))
            if names.contains("\(id).eml"), (try? self.entry(id)) != nil {
                recovery.entries += 1
            } else {
                // Should not happen; keep it for a human rather than guess.
                _ = rename(self.envelopePath(id), self.corrupt + "/\(id).envelope")
                if names.contains("\(id).eml") { _ = rename(self.messagePath(id), self.corrupt + "/\(id).eml") }
                recovery.setAsideCorrupt += 1
            }
        }
        return recovery
    }

    /// Moves a finished, synced message file into the queue and commits its envelope.
    func enqueue(file: String, entry: QueueEntry) throws(StoreError) {
        let message = self.messagePath(entry.id)
        guard rename(file, message) == 0 else { throw StoreError(operation: "rename", path: message, errno: errno) }
        do {
            try self.writeEnvelope(entry)
        } catch {
            POSIXFile.remove(message)
            throw error
        }
    }

    /// Writes an envelope atomically and durably (also used to record delivery attempts).
    func writeEnvelope(_ entry: QueueEntry) throws(StoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(entry)
        } catch {
            throw StoreError.io(operation: "encode", path: self.envelopePath(entry.id), errno: EINVAL)
        }
        let temporary = self.temporary + "/\(entry.id).envelope"
        let fd = try POSIXFile.createExclusive(temporary)
        do {
            try POSIXFile.writeAll(fd, [UInt8](data), path: temporary)
            try POSIXFile.syncData(fd, path: temporary)
            try POSIXFile.closeFile(fd, path: temporary)
        } catch {
            _ = try? POSIXFile.closeFile(fd, path: temporary)
            POSIXFile.remove(temporary)
            throw error
        }
        let final = self.envelopePath(entry.id)
        guard rename(temporary, final) == 0 else {
            let code = errno
            POSIXFile.remove(temporary)
            throw StoreError(operation: "rename", path: final, errno: code)
        }
        try POSIXFile.syncDirectory(self.directory)
    }

    func entry(_ id: String) throws -> QueueEntry {
        let data = try Data(contentsOf: URL(fileURLWithPath: self.envelopePath(id)))
        let entry = try JSONDecoder().decode(QueueEntry.self, from: data)
        guard entry.version <= QueueEntry.currentVersion, entry.id == id else {
            throw StoreError.io(operation: "read", path: self.envelopePath(id), errno: EINVAL)
        }
        return entry
    }

    /// Every committed entry, oldest first. Safe to call from another process (the CLI).
    public func entries() throws -> [QueueEntry] {
        let names = (try? POSIXFile.listDirectory(self.directory)) ?? []
        return names.filter { $0.hasSuffix(".envelope") }
            .compactMap { try? self.entry(String($0.dropLast(9))) }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }
}
