import Foundation
import MailCore

/// One message waiting in the outbound queue: its envelope and per-recipient state. Stored as JSON
/// beside the message, versioned so later formats can read it.
public struct QueueEntry: Codable, Hashable, Sendable {
    public static let currentVersion = 1

    public var version: Int
    public var id: String
    /// Unix seconds.
    public var createdAt: Int64
    /// Stored as the address without brackets, "" for the null path.
    public var sender: ReversePath
    public var recipients: [Recipient]
    /// Octets of the queued message file.
    public var size: Int
    public var smtpUTF8: Bool
    /// "7BIT" or "8BITMIME", as MAIL FROM said.
    public var body: String?
    /// The SASL identity that submitted it.
    public var authenticatedUser: String?
    /// The sender was told that delivery is taking long.
    public var warned: Bool?

    public struct Recipient: Codable, Hashable, Sendable {
        public enum State: String, Codable, Sendable {
            case pending
            case delivered
            case failed
        }

        public var address: Mailbox
        public var state: State
        public var attempts: Int
        /// Unix seconds.
        public var lastAttempt: Int64?
        /// What went wrong last, in words: the remote reply, or why none came.
        public var lastError: String?
        /// Unix seconds; nil: as soon as possible.
        public var nextAttempt: Int64?
        /// The enhanced status code of the last result (`4.4.1`, `5.1.1`).
        public var status: String?
        /// The server that gave the last reply, when one did.
        public var remoteMTA: String?
        /// A failure was reported to the sender (or there was nobody to report it to).
        public var notified: Bool?

        public init(address: Mailbox) {
            self.address = address
            self.state = .pending
            self.attempts = 0
        }
    }

    /// Every waiting recipient is tried at the next occasion (`petrel queue retry`).
    public mutating func retryNow() {
        for index in self.recipients.indices where self.recipients[index].state == .pending {
            self.recipients[index].nextAttempt = nil
        }
    }

    /// Gives up on every waiting recipient; the report to the sender goes out next
    /// (`petrel queue bounce`).
    public mutating func returnToSender(now: Int64) {
        for index in self.recipients.indices where self.recipients[index].state == .pending {
            self.recipients[index].state = .failed
            self.recipients[index].status = "5.0.0"
            self.recipients[index].lastError = "returned to the sender by the postmaster"
            self.recipients[index].lastAttempt = now
            self.recipients[index].nextAttempt = nil
            self.recipients[index].notified = self.sender == .null
        }
    }

    /// Queue ids are file names: letters and digits only.
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.utf8.allSatisfy {
                (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
            }
    }

    public init(
        id: String,
        createdAt: Int64,
        sender: ReversePath,
        recipients: [Mailbox],
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

/// What `petrel queue` asks of a message.
public enum QueueRequest: String, Sendable, CaseIterable {
    /// Try the waiting recipients now.
    case retry
    /// Remove it without a report.
    case delete
    /// Give up on the waiting recipients and report to the sender.
    case bounce
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

    public func messagePath(_ id: String) -> String { self.directory + "/\(id).eml" }
    func envelopePath(_ id: String) -> String { self.directory + "/\(id).envelope" }
    /// Requests from `petrel queue` to the running server: `<id>.retry`, `<id>.delete`, ...
    public var controlDirectory: String { self.directory + "/control" }

    /// What recovery found and did at start-up.
    public struct Recovery: Hashable, Sendable {
        public var entries = 0
        /// Messages `petrel sendmail` left while the server was down.
        public var adopted = 0
        public var removedUnfinished = 0
        public var setAsideCorrupt = 0
    }

    /// Creates the directories and clears out what a crash left half-written, after finishing
    /// any adoption from `pickup` that a crash interrupted.
    func recover(pickup: String) throws(StoreError) -> Recovery {
        for path in [self.directory, self.temporary, self.corrupt, self.controlDirectory, pickup] {
            try POSIXFile.makeDirectory(path)
        }
        var recovery = Recovery()
        recovery.adopted = try self.adopt(from: pickup).count
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
        try self.stage(file: file, entry: entry)
        do {
            try POSIXFile.syncDirectory(self.directory)
        } catch {
            self.unstage(entry.id)
            throw error
        }
    }

    /// Moves a synced message file into the queue and writes its envelope (synced, renamed into
    /// place: the commit), all but the sync of the queue directory, which the caller owes (a group
    /// commit syncs it once for many messages; `unstage` takes the message back if that fails).
    func stage(file: String, entry: QueueEntry) throws(StoreError) {
        let message = self.messagePath(entry.id)
        guard rename(file, message) == 0 else { throw StoreError(operation: "rename", path: message, errno: errno) }
        do {
            try self.writeEnvelope(entry, sync: false)
        } catch {
            POSIXFile.remove(message)
            throw error
        }
    }

    /// Takes back a staged message whose directory could not be synced (it was never promised).
    func unstage(_ id: String) {
        POSIXFile.remove(self.envelopePath(id))
        POSIXFile.remove(self.messagePath(id))
    }

    /// Queues a message held in memory (a delivery report): the file, then its envelope.
    public func add(message: [UInt8], entry: QueueEntry) throws(StoreError) {
        var entry = entry
        entry.size = message.count
        let temporary = self.temporary + "/\(entry.id).eml"
        try POSIXFile.writeSynced(temporary, message)
        try self.enqueue(file: temporary, entry: entry)
    }

    /// Takes a message out of the queue: the envelope goes first (its absence is the commit),
    /// then the file.
    public func remove(_ id: String) throws(StoreError) {
        guard unlink(self.envelopePath(id)) == 0 || errno == ENOENT else {
            throw StoreError(operation: "unlink", path: self.envelopePath(id), errno: errno)
        }
        try POSIXFile.syncDirectory(self.directory)
        POSIXFile.remove(self.messagePath(id))
    }

    /// For `petrel sendmail`: leaves a message in `pickup` for the server to queue. The envelope,
    /// written last and renamed into place, is the commit; both are synced before it returns.
    public static func drop(message: [UInt8], entry: QueueEntry, into pickup: String) throws(StoreError) {
        _ = try POSIXFile.makeDirectory(pickup)
        var entry = entry
        entry.size = message.count
        let data: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            data = try encoder.encode(entry)
        } catch {
            throw StoreError.io(operation: "encode", path: pickup, errno: EINVAL)
        }
        let message = (path: pickup + "/\(entry.id).eml", bytes: message)
        let envelope = (path: pickup + "/\(entry.id).envelope.tmp", bytes: [UInt8](data))
        do {
            try POSIXFile.writeSynced(message.path, message.bytes)
            try POSIXFile.writeSynced(envelope.path, envelope.bytes)
        } catch {
            POSIXFile.remove(message.path)
            throw error
        }
        try POSIXFile.rename(envelope.path, pickup + "/\(entry.id).envelope")
        try POSIXFile.syncDirectory(pickup)
    }

    /// Moves the messages `petrel sendmail` left in `pickup` (each an `.eml` and, written last,
    /// its `.envelope`) into the queue. Returns the ids taken.
    public func adopt(from pickup: String) throws(StoreError) -> [String] {
        let names = Set((try? POSIXFile.listDirectory(pickup)) ?? [])
        var adopted: [String] = []
        for name in names.sorted() where name.hasSuffix(".envelope") {
            let id = String(name.dropLast(9))
            // An id already queued stays in pickup for a human: a rename would replace it.
            guard QueueEntry.isValidID(id), access(self.envelopePath(id), F_OK) != 0 else { continue }
            if names.contains("\(id).eml") {
                try POSIXFile.rename(pickup + "/\(id).eml", self.messagePath(id))
            }
            // The message file is in place (now or by an interrupted earlier call): commit.
            try POSIXFile.rename(pickup + "/" + name, self.envelopePath(id))
            adopted.append(id)
        }
        if !adopted.isEmpty {
            try POSIXFile.syncDirectory(self.directory)
            try POSIXFile.syncDirectory(pickup)
        }
        return adopted
    }

    /// Asks the running server to act on a message (or on all, with id "all"): a file in the
    /// control directory, removed by the server once done.
    public func request(_ request: QueueRequest, id: String) throws(StoreError) -> String {
        let path = self.controlDirectory + "/\(id).\(request.rawValue)"
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(operation: "create", path: path, errno: errno) }
        close(fd)
        return path
    }

    /// The requests waiting in the control directory (`<id>.<request>` names), for the server.
    public func pendingRequests() throws(StoreError) -> [String] {
        try POSIXFile.listDirectory(self.controlDirectory)
    }

    /// Marks a request done (the command line waits for its file to go).
    public func finishRequest(_ name: String) {
        POSIXFile.remove(self.controlDirectory + "/" + name)
    }

    /// Acts on a message directly; only while no server runs (the caller holds the data
    /// directory lock). A bounce's report is sent when the server next runs.
    public func perform(_ request: QueueRequest, id: String, now: Int64) throws -> Bool {
        guard var entry = try? self.entry(id) else { return false }
        switch request {
        case .retry:
            entry.retryNow()
            try self.update(entry)
        case .delete:
            try self.remove(id)
        case .bounce:
            entry.returnToSender(now: now)
            try self.update(entry)
        }
        return true
    }

    /// Writes an envelope atomically and durably (also used to record delivery attempts).
    public func update(_ entry: QueueEntry) throws(StoreError) {
        try self.writeEnvelope(entry)
    }

    /// Writes an envelope atomically and durably (also used to record delivery attempts).
    func writeEnvelope(_ entry: QueueEntry, sync: Bool = true) throws(StoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(entry)
        } catch {
            throw StoreError.io(operation: "encode", path: self.envelopePath(entry.id), errno: EINVAL)
        }
        let temporary = self.temporary + "/\(entry.id).envelope"
        try POSIXFile.writeSynced(temporary, [UInt8](data))
        let final = self.envelopePath(entry.id)
        guard rename(temporary, final) == 0 else {
            let code = errno
            POSIXFile.remove(temporary)
            throw StoreError(operation: "rename", path: final, errno: code)
        }
        if sync { try POSIXFile.syncDirectory(self.directory) }
    }

    public func entry(_ id: String) throws -> QueueEntry {
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
