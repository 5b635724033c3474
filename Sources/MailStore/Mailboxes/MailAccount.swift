import MailCore
import NIOConcurrencyHelpers
import PetrelSystem

/// One account's folders and messages as IMAP sees them: the Maildir under `mail/<address>/`
/// (Maildir++: `INBOX` is the root, folder `a.b` is the directory `.a.b`) and its index.
///
/// Every method blocks (files, SQLite) and they run one at a time (a lock): callers use
/// `MailAccounts.run`, which runs them on the store's thread pool. The account is shared by all
/// sessions of the user in this process, so UIDs are given out in one place.
///
/// Other programs (Dovecot, mutt, a delivery) may change the Maildir at any time; `sync` finds
/// what they did from the directories and records it: new files get new UIDs, missing ones are
/// expunged, renamed ones change flags. A folder is rescanned only when its `new/` or `cur/`
/// changed (their modification times), or changed within the last second (a time's last change
/// may hide a second one in the same tick).
public final class MailAccount: @unchecked Sendable {
    public let address: String
    let root: String
    let maildirs: MaildirStore
    /// IMAP name → special-use attribute.
    let specialUse: [String: String]
    let index: MailboxIndex
    let lock = NIOLock()
    /// Calls through `MailAccounts.run` take turns here, without holding a thread while they wait.
    let turn = AsyncSemaphore(1)
    /// Folders by IMAP name, `INBOX` included; guarded by `lock`.
    var folders: [String: Folder] = [:]
    /// Numbers APPEND's and COPY's file names.
    var fileCounter = 0
    /// Each folder's state as the last change or look left it: what a session in IDLE reads
    /// when woken, with no trip to the account's threads (`publishedState`). Folders whose
    /// state was asked for are here; a change under the lock publishes again.
    let published = NIOLockedValueBox<[String: Published]>([:])
    /// How long a folder stays watched after a session last read its published state.
    static let watchWindow: Int64 = 10_000_000_000
    struct Published {
        var state: FolderState
        /// When its directories were last looked at (nanoseconds since 1970).
        var checkedAt: Int64
        /// When a session last read it (0: never; only read ones are watched).
        var readAt: Int64
    }
    /// Whether deliveries are being taken in (`MailAccounts.takeIn`), and whether to look once
    /// more after the look under way.
    let takingIn = Coalescer()

    /// One job at a time, and one more after it however many times it is asked for meanwhile.
    final class Coalescer: Sendable {
        private let state = NIOLockedValueBox((running: false, again: false))

        /// True when the caller must run the job; false when it runs already (and will again).
        func begin() -> Bool {
            self.state.withLockedValue { state in
                if state.running {
                    state.again = true
                    return false
                }
                state.running = true
                return true
            }
        }

        /// The job's round is done: true when it must run again.
        func next() -> Bool {
            self.state.withLockedValue { state in
                if state.again {
                    state.again = false
                    return true
                }
                state.running = false
                return false
            }
        }
    }
    /// Folders one account may have, and keywords one message: beyond them, lists and flag
    /// updates would cost what a user chooses.
    public static let maximumFolders = 1_000
    /// A deleted folder's directory until it is removed (a crash between DELETE's two steps
    /// leaves one, removed at the next look). No folder may be named so (`canonicalName`).
    static let deletedPrefix = ".petrel-deleted-"
    public static let maximumKeywords = 50
    /// How long a folder remembers which UIDs left it (QRESYNC's VANISHED): a client that comes
    /// back within this time hears of exactly the messages it lost; one that comes back later
    /// hears of every UID it may have known that is not there (RFC 7162 §3.2.5.2 allows both).
    public static let vanishedRetention: Int64 = 180 * 86_400
    /// And at most this many of them per folder (the oldest go first): a user who appends and
    /// expunges in a loop cannot grow the index without bound.
    public static let maximumTombstones = 100_000

    final class Folder {
        var row: MailboxIndex.FolderRow
        var messages: [UInt32: MailboxIndex.MessageRow] = [:]
        var byBase: [String: UInt32] = [:]
        /// Every message's file (`cur/…` or `new/…`): a scan that finds exactly these has
        /// nothing to take in, and says so without parsing a name.
        var files: Set<String> = []
        /// Entries of `new/` and `cur/` the last scan could not take in (a directory, a FIFO,
        /// an unreadable file): not scanned for again until the directories change.
        var unreadable: Set<String> = []
        /// Modification times of `new/` and `cur/` at the last scan.
        var stamps: [Int64?] = []
        /// When its directories' times were last compared with `stamps`.
        var checkedAt: Int64 = 0
        /// When the folder must be scanned though its directories' times are unchanged
        /// (nanoseconds since 1970; `MailAccount.verification`).
        var verifyAfter: Int64?
        /// When this process last pruned the folder's tombstones, and messages removed since.
        var prunedAt: Int64 = 0
        var removedSincePrune = 0
        /// The messages as `state(of:)` gives them, ascending by UID: made once, then patched
        /// by each commit, so that a command on a folder of 100,000 messages neither sorts nor
        /// converts them again.
        var snapshot: [StoredMessage]?
        /// The snapshot's UIDs and MODSEQs (`FolderState.uids`, `modSeqs`), made again after
        /// each change.
        var columns: (uids: [UInt32], modSeqs: [UInt64])?

        init(row: MailboxIndex.FolderRow) {
            self.row = row
        }

        func remember(_ row: MailboxIndex.MessageRow) {
            if let old = self.messages.updateValue(row, forKey: row.uid), old.file != row.file {
                self.files.remove(old.file)
            }
            self.byBase[row.base] = row.uid
            self.files.insert(row.file)
        }

        func forget(_ uid: UInt32) {
            guard let row = self.messages.removeValue(forKey: uid) else { return }
            self.byBase[row.base] = nil
            self.files.remove(row.file)
        }
    }

    init(address: String, maildirs: MaildirStore, specialUse: [String: String]) throws(StoreError) {
        self.address = address
        self.maildirs = maildirs
        self.root = try maildirs.ensureMaildir(for: address)
        self.specialUse = specialUse
        self.index = try MailboxIndex(path: self.root + "/" + MailboxIndex.fileName)
        for name in specialUse.keys.sorted() {
            _ = try maildirs.ensureMaildir(for: address, folder: "." + name)
        }
        try self.loadFolders()
    }

    /// The directory of a folder.
    func directory(_ name: String) -> String {
        name == "INBOX" ? self.root : self.root + "/." + name
    }

    /// A client's name for a folder checked and made canonical (`INBOX` in any case is INBOX).
    /// Names are modified UTF-7 with `.` between levels; a level may not be empty, and nothing
    /// may name a file outside the Maildir.
    public static func canonicalName(_ name: String) throws(MailboxError) -> String {
        if name.uppercased() == "INBOX" { return "INBOX" }
        guard !name.isEmpty, name.utf8.count <= 200 else { throw .invalidName("a folder name is 1 to 200 octets") }
        guard !name.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0x2F || $0 == 0x5C }) else {
            throw .invalidName("a folder name may not hold control characters, / or \\")
        }
        guard !name.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            throw .invalidName("a level of a folder name may not be empty (\"a..b\", \".a\", \"a.\")")
        }
        guard !name.uppercased().hasPrefix("INBOX.") else {
            throw .invalidName("folders are made beside INBOX, not under it")
        }
        guard !("." + name).hasPrefix(Self.deletedPrefix) else {
            throw .invalidName("names starting with petrel-deleted- are the server's own")
        }
        return name
    }

    func withLock<T>(_ body: () throws(MailboxError) -> T) throws(MailboxError) -> T {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body()
    }

    // MARK: Folders

    /// Reads the folder list from the Maildir, adding index rows for new directories and
    /// dropping those whose directory is gone.
    func loadFolders() throws(StoreError) {
        var rows: [String: MailboxIndex.FolderRow] = [:]
        for row in try self.index.folders() { rows[row.name] = row }
        var present = ["INBOX"]
        for entry in try POSIXFile.listDirectory(self.root)
        where entry.hasPrefix(".") && entry.count > 1 && MaildirFiles.isDirectory(self.root + "/" + entry) {
            if entry.hasPrefix(Self.deletedPrefix) {
                // A folder DELETE had put out of sight when the process stopped: finished now.
                try? MaildirFiles.removeTree(self.root + "/" + entry)
                continue
            }
            let name = String(entry.dropFirst())
            if (try? Self.canonicalName(name)) == name { present.append(name) }
        }
        for name in present where rows[name] == nil {
            rows[name] = try self.index.addFolder(name, subscribed: true)
        }
        for (name, row) in rows where !present.contains(name) {
            try self.index.removeFolder(row.id)
            rows[name] = nil
            self.folders[name] = nil
            self.published.withLockedValue { $0[name] = nil }
        }
        for (name, row) in rows where self.folders[name] == nil {
            self.folders[name] = Folder(row: row)
        }
    }

    public func list() throws(MailboxError) -> [FolderInfo] {
        try self.withLock { () throws(MailboxError) in
            do throws(StoreError) { try self.loadFolders() } catch { throw .storage(error) }
            let names = Set(self.folders.keys)
            var infos = self.folders.values.map { folder in
                let name = folder.row.name
                return FolderInfo(
                    name: name,
                    specialUse: self.specialUse[name],
                    subscribed: folder.row.subscribed,
                    hasChildren: names.contains { $0.hasPrefix(name + ".") }
                )
            }
            // Levels of names with no folder of their own (`a` of `a.b`).
            var levels = Set<String>()
            for name in names {
                var parts = name.split(separator: ".").dropLast()
                while !parts.isEmpty {
                    let level = parts.joined(separator: ".")
                    if !names.contains(level) { levels.insert(level) }
                    parts = parts.dropLast()
                }
            }
            for level in levels {
                infos.append(
                    FolderInfo(name: level, specialUse: nil, subscribed: false, hasChildren: true, exists: false)
                )
            }
            return infos.sorted { ($0.name == "INBOX" ? "" : $0.name) < ($1.name == "INBOX" ? "" : $1.name) }
        }
    }

    public func create(_ name: String) throws(MailboxError) {
        let name = try Self.canonicalName(name)
        try self.withLock { () throws(MailboxError) in
            do throws(StoreError) { try self.loadFolders() } catch { throw .storage(error) }
            guard self.folders[name] == nil else { throw .alreadyExists(name) }
            guard self.folders.count < Self.maximumFolders else {
                throw .limit("at most \(Self.maximumFolders) folders")
            }
            do throws(StoreError) {
                self.maildirs.forget(self.address, folder: "." + name)
                _ = try self.maildirs.ensureMaildir(for: self.address, folder: "." + name)
                try self.loadFolders()
            } catch {
                throw .storage(error)
            }
        }
    }

    /// Deletes a folder and its messages. INBOX cannot be deleted (RFC 9051 §6.3.4); a folder's
    /// children stay (a name with children becomes a level only).
    public func delete(_ name: String) throws(MailboxError) {
        let name = try Self.canonicalName(name)
        guard name != "INBOX" else { throw .cannot("INBOX cannot be deleted") }
        try self.withLock { () throws(MailboxError) in
            do throws(StoreError) { try self.loadFolders() } catch { throw .storage(error) }
            guard let folder = self.folders[name] else { throw .nonexistent(name) }
            do throws(StoreError) {
                // Out of sight first (one rename), then removed: a crash leaves no half folder.
                let doomed = self.root + "/" + Self.deletedPrefix + "\(folder.row.id)-\(time(nil))"
                try POSIXFile.rename(self.directory(name), doomed)
                try POSIXFile.syncDirectory(self.root)
                try self.index.removeFolder(folder.row.id)
                self.folders[name] = nil
                self.published.withLockedValue { $0[name] = nil }
                self.maildirs.forget(self.address, folder: "." + name)
                try MaildirFiles.removeTree(doomed)
            } catch {
                throw .storage(error)
            }
        }
    }

    /// Renames a folder and the folders under it; UIDs and UIDVALIDITY go with them. Renaming
    /// INBOX moves its messages to a new folder and leaves INBOX empty (RFC 9051 §6.3.6).
    public func rename(_ from: String, to: String) throws(MailboxError) {
        let from = try Self.canonicalName(from)
        let to = try Self.canonicalName(to)
        guard to != "INBOX" else { throw .alreadyExists("INBOX") }
        if from == "INBOX" {
            try self.create(to)
            let state = try self.state(of: "INBOX")
            let uids = state.messages.map(\.uid)
            if !uids.isEmpty { _ = try self.move(uids: uids, from: "INBOX", to: to) }
            return
        }
        try self.withLock { () throws(MailboxError) in
            do throws(StoreError) { try self.loadFolders() } catch { throw .storage(error) }
            guard self.folders[from] != nil else { throw .nonexistent(from) }
            guard self.folders[to] == nil else { throw .alreadyExists(to) }
            guard !to.hasPrefix(from + ".") else { throw .cannot("a folder cannot move under itself") }
            let moving = self.folders.keys.filter { $0 == from || $0.hasPrefix(from + ".") }.sorted()
            do {
                for name in moving {
                    let newName = to + name.dropFirst(from.count)
                    guard self.folders[newName] == nil else { throw MailboxError.alreadyExists(newName) }
                    try POSIXFile.rename(self.directory(name), self.directory(newName))
                    self.maildirs.forget(self.address, folder: "." + name)
                    let folder = self.folders.removeValue(forKey: name)!
                    self.published.withLockedValue { $0[name] = nil }
                    try self.index.renameFolder(folder.row.id, to: newName)
                    folder.row.name = newName
                    self.folders[newName] = folder
                }
                // A level between (`to` = "a.b.c" with no "a.b") is only a level: Maildir++ is flat.
                try POSIXFile.syncDirectory(self.root)
            } catch let error as MailboxError {
                throw error
            } catch let error as StoreError {
                throw .storage(error)
            } catch {
                throw .cannot("\(error)")
            }
        }
    }

    public func setSubscribed(_ name: String, _ subscribed: Bool) throws(MailboxError) {
        let name = try Self.canonicalName(name)
        try self.withLock { () throws(MailboxError) in
            guard let folder = self.folders[name] else {
                // RFC 9051 §6.3.7: subscribing to a name that does not exist may fail.
                if subscribed { throw .nonexistent(name) }
                return
            }
            do throws(StoreError) { try self.index.setSubscribed(folder.row.id, subscribed) } catch {
                throw .storage(error)
            }
            folder.row.subscribed = subscribed
        }
    }
}
