import MailCore
import PetrelSystem

extension MailAccount {
    /// How STORE changes flags.
    public enum FlagChange: Hashable, Sendable {
        case add
        case remove
        case replace
    }

    /// A folder's messages and counters, after taking in what other programs changed.
    /// `watching`: a session in IDLE asks, so mail delivered to the folder is taken in at once
    /// (`publishedState`).
    public func state(of name: String, watching: Bool = false) throws(MailboxError) -> FolderState {
        let name = try Self.canonicalName(name)
        return try self.withLock { () throws(MailboxError) in
            let folder = try self.syncedFolder(name)
            return self.publish(folder, watched: watching)
        }
    }

    /// The folder's state as its last change or look left it, if its directories were looked
    /// at within `maxAge` nanoseconds (nil when not, or when nothing published it yet). Takes
    /// no turn and touches no file: a session in IDLE, woken with all the others, reads this
    /// instead of queueing on the account's threads. Reading it marks the folder watched: mail
    /// delivered to it in the next `watchWindow` is taken in at once (`takeIn`).
    public func publishedState(of name: String, checkedWithin maxAge: Int64) -> FolderState? {
        let name = (try? Self.canonicalName(name)) ?? name
        let now = Self.now()
        return self.published.withLockedValue { published in
            guard published[name] != nil else { return nil }
            published[name]!.readAt = now
            let age = now - published[name]!.checkedAt
            // A clock set back makes the age negative: not to be trusted as fresh.
            return age >= 0 && age <= maxAge ? published[name]!.state : nil
        }
    }

    /// Looks at the watched folders (a session read their published state within
    /// `watchWindow`: sessions in IDLE do every few seconds) for mail delivered into their
    /// directories, and publishes what it finds; the commit wakes the sessions. Others are
    /// forgotten until read again. Returns when it must look again (a change in the clock tick
    /// of the last may be hidden until then), if it must.
    func takeIn() -> Int64? {
        self.lock.lock()
        defer { self.lock.unlock() }
        let now = Self.now()
        let watched = self.published.withLockedValue { published in
            published = published.filter { now - $0.value.readAt <= Self.watchWindow }
            return Array(published.keys)
        }
        var due: Int64?
        for name in watched {
            guard let folder = try? self.syncedFolder(name) else { continue }
            self.publish(folder)
            if let after = folder.verifyAfter { due = min(due ?? after, after) }
        }
        return due
    }

    /// Makes the folder's state the published one (`published`). Must hold the lock.
    @discardableResult
    func publish(_ folder: Folder, watched: Bool = false) -> FolderState {
        let state = Self.state(of: folder)
        let now = watched ? Self.now() : 0
        self.published.withLockedValue { published in
            let readAt = max(now, published[folder.row.name]?.readAt ?? 0)
            published[folder.row.name] = Published(state: state, checkedAt: folder.checkedAt, readAt: readAt)
        }
        return state
    }

    static func state(of folder: Folder) -> FolderState {
        let messages: [StoredMessage]
        if let snapshot = folder.snapshot {
            messages = snapshot
        } else {
            messages = folder.messages.values.sorted { $0.uid < $1.uid }.map(Self.stored)
            folder.snapshot = messages
        }
        let columns = folder.columns ?? (messages.map(\.uid), messages.map(\.modSeq))
        folder.columns = columns
        return FolderState(
            mailboxID: Self.mailboxID(of: folder.row),
            uidValidity: folder.row.uidValidity,
            uidNext: folder.row.uidNext,
            highestModSeq: folder.row.highestModSeq,
            messages: messages,
            columns: columns
        )
    }

    static func stored(_ row: MailboxIndex.MessageRow) -> StoredMessage {
        StoredMessage(
            uid: row.uid,
            modSeq: row.modSeq,
            flags: Self.flags(of: row),
            size: row.size,
            internalDate: row.internalDate,
            emailID: Self.emailID(of: row)
        )
    }

    /// Brings a folder's snapshot up to date with a change just committed.
    static func patch(_ folder: Folder, with change: MailboxIndex.Change) {
        folder.columns = nil
        guard var snapshot = folder.snapshot else { return }
        folder.snapshot = nil  // one owner while it changes: no copy
        if !change.removed.isEmpty {
            let gone = Set(change.removed)
            snapshot.removeAll { gone.contains($0.uid) }
        }
        for row in change.updated {
            if let index = FolderState.index(of: row.uid, in: snapshot) { snapshot[index] = Self.stored(row) }
        }
        for row in change.inserted.sorted(by: { $0.uid < $1.uid }) {
            if let last = snapshot.last, last.uid >= row.uid {
                let position = snapshot.partitioningIndex { $0.uid >= row.uid }
                if position < snapshot.count && snapshot[position].uid == row.uid {
                    snapshot[position] = Self.stored(row)
                } else {
                    snapshot.insert(Self.stored(row), at: position)
                }
            } else {
                snapshot.append(Self.stored(row))
            }
        }
        folder.snapshot = snapshot
    }

    /// OBJECTID's EMAILID (RFC 8474 §5.1): the one a COPY or MOVE carried over, else one the
    /// file's base name gives (unique in the account, the same for every reader, never changed
    /// by a flag): `M` and 16 hexadecimal digits of its FNV-1a hash.
    static func emailID(of row: MailboxIndex.MessageRow) -> String {
        if let id = row.emailID { return id }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in row.base.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "M" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// OBJECTID's MAILBOXID (§4.1): the folder's index row and UIDVALIDITY, so it follows a
    /// RENAME and a folder made again after a DELETE gets another.
    static func mailboxID(of row: MailboxIndex.FolderRow) -> String {
        "F\(row.uidValidity)-\(row.id)"
    }

    static func flags(of row: MailboxIndex.MessageRow) -> MessageFlags {
        var flags = MessageFlags(names: row.fileName.flags)
        flags.keywords = row.keywords
        return flags
    }

    /// The folder, scanned if its directories changed. Must hold the lock.
    func syncedFolder(_ name: String) throws(MailboxError) -> Folder {
        if self.folders[name] == nil {
            do throws(StoreError) { try self.loadFolders() } catch { throw .storage(error) }
        }
        guard let folder = self.folders[name] else { throw .nonexistent(name) }
        do throws(StoreError) { try self.sync(folder) } catch { throw .storage(error) }
        return folder
    }

    /// Takes in the folder's directories as they are now.
    func sync(_ folder: Folder, force: Bool = false) throws(StoreError) {
        let directory = self.directory(folder.row.name)
        if folder.stamps.isEmpty {
            // First use in this process: what the index remembers.
            for row in try self.index.messages(folder: folder.row.id) { folder.remember(row) }
        }
        // tmp/, new/ and cur/ are directories of the folder's own, never links to elsewhere
        // (another user's Maildir): a folder whose are not is not used at all.
        for sub in ["tmp", "new", "cur"] where !MaildirFiles.isDirectory(directory + "/" + sub) {
            if MaildirFiles.exists(directory + "/" + sub) {
                throw StoreError.io(
                    operation: "use (not a directory of its own)",
                    path: directory + "/" + sub,
                    errno: ELOOP
                )
            }
        }
        let stamps = self.stamps(folder)
        let nowNanoseconds = Self.now()
        folder.checkedAt = nowNanoseconds
        let verify = folder.verifyAfter.map { nowNanoseconds >= $0 } ?? false
        if !force, stamps == folder.stamps, !verify { return }
        do {
            try self.scan(folder, directory, stamps: stamps, now: nowNanoseconds)
        } catch {
            // Not taken in (a listing refused, the index unwritable): looked at again in five
            // seconds, not at every command meanwhile, nor only at the directories' next change.
            folder.stamps = stamps
            folder.verifyAfter = nowNanoseconds + 5_000_000_000
            throw error
        }
    }

    /// `sync`'s scan: what the directories hold against what the index knows, and the
    /// difference committed. The directories' times are recorded once it is.
    private func scan(_ folder: Folder, _ directory: String, stamps: [Int64?], now: Int64) throws(StoreError) {
        let files = try self.files(in: directory)
        // Most scans (a look after Petrel's own changes, a verification after a clock tick) find
        // exactly the files the index knows (and those it could not read): one set lookup each.
        if files.count == folder.files.count + folder.unreadable.count
            && files.allSatisfy({ folder.files.contains($0) || folder.unreadable.contains($0) })
        {
            folder.stamps = stamps
            folder.verifyAfter = Self.verification(of: stamps, now: now, pending: nil)
            return
        }
        var unreadable = Set<String>()
        var listing = Self.byBase(files)
        var change = MailboxIndex.Change(uidNext: folder.row.uidNext, highestModSeq: folder.row.highestModSeq)
        var missing = folder.byBase.keys.filter { listing[$0] == nil }
        if !missing.isEmpty {
            // A file between two names (another program renaming it) may have been missed:
            // only a file missing from a second listing too is gone.
            let again = Self.byBase(try self.files(in: directory))
            for (base, file) in again where listing[base] == nil { listing[base] = file }
            missing = missing.filter { listing[$0] == nil }
        }
        if !missing.isEmpty {
            change.highestModSeq += 1
            for base in missing {
                guard let uid = folder.byBase[base] else { continue }
                change.removed.append(uid)
            }
        }
        var added: [(base: String, file: String, description: MaildirFiles.Description)] = []
        for (base, file) in listing {
            if let uid = folder.byBase[base], var row = folder.messages[uid] {
                guard row.file != file else { continue }
                let flagsChanged =
                    row.fileName.flags != MaildirFileName(String(file.dropFirst(4))).flags
                row.file = file
                if flagsChanged {
                    change.highestModSeq += 1
                    row.modSeq = change.highestModSeq
                }
                change.updated.append(row)
            } else if let description = MaildirFiles.describe(directory + "/" + file) {
                added.append((base, file, description))
            } else {
                // Gone since the listing (its rename changes the directory's time: seen at the
                // next look), or no message at all (a directory, a FIFO, a file Petrel may not
                // read): left out until the directories change.
                unreadable.insert(file)
            }
        }
        // Arrival order: by date, then by name (whose leading time and counter order them too).
        added.sort { ($0.description.date, $0.base) < ($1.description.date, $1.base) }
        if !added.isEmpty { change.highestModSeq += 1 }
        for message in added {
            change.inserted.append(
                MailboxIndex.MessageRow(
                    uid: change.uidNext,
                    base: message.base,
                    file: message.file,
                    keywords: [],
                    modSeq: change.highestModSeq,
                    size: message.description.size,
                    internalDate: message.description.date,
                    structure: message.description.structure,
                    preview: message.description.preview,
                    keptHeader: message.description.keptHeader
                )
            )
            change.uidNext += 1
        }
        if !(change.inserted.isEmpty && change.updated.isEmpty && change.removed.isEmpty) {
            try self.commit(change, to: folder)
        }
        folder.stamps = stamps
        folder.verifyAfter = Self.verification(of: stamps, now: now, pending: nil)
        folder.unreadable = unreadable
    }

    static func now() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// When a folder whose directories have these times must be scanned again though they stay
    /// the same: a change in the same clock tick as the last one leaves the time as it was, so
    /// a time within a tick of now may hide one. The tick: 50 ms where times have nanoseconds
    /// (Linux's file times move with its coarse clock, 10 ms at most), a second where they have
    /// no fraction (ext3, some network file systems). An earlier pending verification stands.
    static func verification(of stamps: [Int64?], now: Int64, pending: Int64?) -> Int64? {
        var due = pending
        for stamp in stamps {
            guard let stamp else { continue }
            let tick: Int64 = stamp % 1_000_000_000 == 0 ? 1_000_000_000 : 50_000_000
            // Within a tick of now; a time further ahead (a clock set back, `touch -d`) hides
            // nothing a wait would show.
            if now - stamp < tick && stamp - now < tick { due = min(due ?? .max, stamp + tick) }
        }
        return due
    }

    /// The folder's directory times just before a change of this process's own, and when.
    struct OwnChange {
        var stamps: [Int64?]
        var at: Int64
    }

    func stamps(_ folder: Folder) -> [Int64?] {
        let directory = self.directory(folder.row.name)
        return [MaildirFiles.modificationTime(directory + "/new"), MaildirFiles.modificationTime(directory + "/cur")]
    }

    /// Notes the directories' times before a change of this process's own (call it just before
    /// the renames, links or unlinks).
    func beginOwnChange(_ folder: Folder) -> OwnChange {
        OwnChange(stamps: self.stamps(folder), at: Self.now())
    }

    /// After a change of this process's own (its index already says what it did): the new times
    /// are taken as seen, so the next command does not scan the folder for what it knows. Only
    /// when the times before the change were those of the last scan, and the change took less
    /// than a tick: then anything another program (a delivery) did meanwhile has a time within
    /// a tick of now, and the folder is scanned once that tick has passed (`verification`).
    /// Otherwise the times stay as they were, and the next command scans.
    func adoptOwnChange(_ folder: Folder, since change: OwnChange) {
        let now = Self.now()
        guard change.stamps == folder.stamps, now - change.at < 50_000_000 else { return }
        let stamps = self.stamps(folder)
        folder.verifyAfter = Self.verification(of: stamps, now: now, pending: folder.verifyAfter)
        folder.stamps = stamps
    }

    /// Every message file of a folder, as `new/NAME` or `cur/NAME`. `new/` is read first: a
    /// file moved from there to `cur/` meanwhile is then seen in one or the other.
    func files(in directory: String) throws(StoreError) -> [String] {
        var files: [String] = []
        for sub in ["new", "cur"] {
            let entries: [String]
            do throws(StoreError) {
                entries = try POSIXFile.listDirectory(directory + "/" + sub)
            } catch .io(_, _, ENOENT) {
                continue
            }
            let prefix = sub + "/"
            for entry in entries where MaildirFileName.isMessage(entry) { files.append(prefix + entry) }
        }
        return files
    }

    /// Base name → file. The same message in both directories (a copy between two steps):
    /// `cur/` wins.
    static func byBase(_ files: [String]) -> [String: String] {
        var listing: [String: String] = [:]
        listing.reserveCapacity(files.count)
        for file in files { listing[String(MaildirFileName.split(String(file.dropFirst(4))).base)] = file }
        return listing
    }

    /// Records a change in the index, then in memory, and wakes the account's IMAP sessions (in
    /// IDLE, most of all): whoever made the change, this process or another program.
    func commit(_ change: MailboxIndex.Change, to folder: Folder) throws(StoreError) {
        try self.index.apply(change, folder: folder.row.id)
        defer { self.maildirs.changes.changed(self.address) }
        // Messages gone: the mailbox is counted again when its quota is next asked. (New ones
        // are added by who made them, APPEND and COPY; a delivery counted its own.)
        if !change.removed.isEmpty { self.maildirs.usage.forget(self.address) }
        let now = Int64(time(nil))
        folder.removedSincePrune += change.removed.count
        if !change.removed.isEmpty
            && (now - folder.prunedAt >= 86_400 || folder.removedSincePrune >= Self.maximumTombstones / 10)
        {
            // Once a day, or every 10,000 removals: the tombstones are a scan of the folder's.
            folder.prunedAt = now
            folder.removedSincePrune = 0
            if let floor = try? self.index.pruneVanished(
                folder: folder.row.id,
                before: now - Self.vanishedRetention,
                keep: Self.maximumTombstones
            ) {
                folder.row.vanishedFloor = max(folder.row.vanishedFloor, floor)
            }
        }
        for uid in change.removed { folder.forget(uid) }
        for row in change.inserted + change.updated { folder.remember(row) }
        // The published state shares the snapshot: out of the way while it is patched (one
        // owner, no copy of the folder's list), then published again. Readers in between make
        // the trip.
        let readAt = self.published.withLockedValue { $0.removeValue(forKey: folder.row.name)?.readAt }
        Self.patch(folder, with: change)
        folder.row.uidNext = change.uidNext
        folder.row.highestModSeq = change.highestModSeq
        if let readAt {
            let state = Self.state(of: folder)
            self.published.withLockedValue {
                $0[folder.row.name] = Published(state: state, checkedAt: folder.checkedAt, readAt: readAt)
            }
        }
    }

    /// The UIDs that left the folder since `modSeq` (QRESYNC), ascending; `complete` is false
    /// when the folder no longer knows all of them (tombstones older than `vanishedRetention`),
    /// and then a client must be told of every UID it may know that is not there.
    public func vanished(_ name: String, since modSeq: UInt64) throws(MailboxError) -> (uids: [UInt32], complete: Bool)
    {
        let name = try Self.canonicalName(name)
        return try self.withLock { () throws(MailboxError) -> (uids: [UInt32], complete: Bool) in
            let folder = try self.syncedFolder(name)
            do throws(StoreError) {
                let uids = try self.index.vanished(folder: folder.row.id, since: modSeq)
                return (uids, modSeq >= folder.row.vanishedFloor)
            } catch {
                throw .storage(error)
            }
        }
    }

    /// A message's octets with CRLF line ends, or nil when it is gone.
    public func read(_ name: String, uid: UInt32) throws(MailboxError) -> [UInt8]? {
        let name = try Self.canonicalName(name)
        return try self.withLock { () throws(MailboxError) -> [UInt8]? in
            let folder = try self.syncedFolder(name)
            for attempt in 0..<2 {
                guard let row = folder.messages[uid] else { return nil }
                switch MaildirFiles.read(self.directory(name) + "/" + row.file) {
                case .success(let bytes):
                    return MaildirFiles.networkLineEnds(bytes)
                case .failure(.io(_, _, ENOENT)) where attempt == 0:
                    // Renamed or removed by another program since the last scan.
                    do throws(StoreError) { try self.sync(folder, force: true) } catch { throw .storage(error) }
                case .failure(let error):
                    if case .io(_, _, ENOENT) = error { return nil }
                    throw .storage(error)
                }
            }
            return nil
        }
    }

    /// The top-level header fields the structure keeps (From, To, Cc, Bcc, Subject, Date,
    /// Content-*), as kept in the index for the messages with UIDs in `uids`; a message indexed
    /// before they were kept has none (read its file).
    public func keptHeaders(_ name: String, uids: [UInt32]) throws(MailboxError) -> [UInt32: [UInt8]] {
        let name = try Self.canonicalName(name)
        return try self.withLock { () throws(MailboxError) -> [UInt32: [UInt8]] in
            guard let folder = self.folders[name] else { throw .nonexistent(name) }
            do throws(StoreError) { return try self.index.keptHeaders(folder: folder.row.id, uids: uids) } catch {
                throw .storage(error)
            }
        }
    }

    /// Reads several messages of a folder in one turn (SEARCH's text keys): `body` gets each
    /// one's octets with CRLF line ends, in the order of `uids`; messages gone are left out.
    public func forEach(
        in name: String,
        uids: [UInt32],
        _ body: (UInt32, [UInt8]) -> Void
    ) throws(MailboxError) {
        let name = try Self.canonicalName(name)
        try self.withLock { () throws(MailboxError) in
            let folder = try self.syncedFolder(name)
            let directory = self.directory(name)
            for uid in uids {
                for attempt in 0..<2 {
                    guard let row = folder.messages[uid] else { break }
                    switch MaildirFiles.read(directory + "/" + row.file) {
                    case .success(let bytes):
                        body(uid, MaildirFiles.networkLineEnds(bytes))
                    case .failure(.io(_, _, ENOENT)) where attempt == 0:
                        do throws(StoreError) { try self.sync(folder, force: true) } catch { throw .storage(error) }
                        continue
                    case .failure(.io(_, _, ENOENT)):
                        break
                    case .failure(let error):
                        throw .storage(error)
                    }
                    break
                }
            }
        }
    }

    /// A message's MIME structure (over its CRLF form): kept in the index since the message was
    /// first seen; computed and kept now for a message indexed without one. Nil when it is gone.
    /// `content`, when given, is the message's octets as `read` returns them.
    public func structure(_ name: String, uid: UInt32, content: [UInt8]? = nil) throws(MailboxError) -> MIMEPart? {
        let name = try Self.canonicalName(name)
        let kept = try self.withLock { () throws(MailboxError) -> MIMEPart? in
            guard let folder = self.folders[name] else { throw .nonexistent(name) }
            do throws(StoreError) { return try self.index.structure(folder: folder.row.id, uid: uid) } catch {
                throw .storage(error)
            }
        }
        if let kept { return kept }
        var bytes = content
        if bytes == nil { bytes = try self.read(name, uid: uid) }
        guard let bytes else { return nil }
        let structure = MIMEPart(message: bytes)
        try self.withLock { () throws(MailboxError) in
            guard let folder = self.folders[name] else { return }
            do throws(StoreError) { try self.index.setStructure(structure, folder: folder.row.id, uid: uid) } catch {
                throw .storage(error)
            }
        }
        return structure
    }

    /// IMAP's renderings of a message's ENVELOPE and BODYSTRUCTURE, as the IMAP server made and
    /// kept them (the store does not read them).
    public struct Renderings: Hashable, Sendable {
        public var envelope: [UInt8]?
        public var bodyStructure: [UInt8]?

        public init(envelope: [UInt8]? = nil, bodyStructure: [UInt8]? = nil) {
            self.envelope = envelope
            self.bodyStructure = bodyStructure
        }
    }

    /// The renderings kept for these messages (one query; a thousand UIDs at most).
    public func renderings(_ name: String, uids: [UInt32]) throws(MailboxError) -> [UInt32: Renderings] {
        let name = try Self.canonicalName(name)
        return try self.withLock { () throws(MailboxError) -> [UInt32: Renderings] in
            guard let folder = self.folders[name] else { throw .nonexistent(name) }
            do throws(StoreError) { return try self.index.renderings(folder: folder.row.id, uids: uids) } catch {
                throw .storage(error)
            }
        }
    }

    /// Keeps renderings (one transaction); a nil part leaves what is kept. Only into the folder
    /// of this UIDVALIDITY: one deleted and made again meanwhile has other messages.
    public func keep(_ renderings: [UInt32: Renderings], in name: String, uidValidity: UInt32?) throws(MailboxError) {
        let name = try Self.canonicalName(name)
        try self.withLock { () throws(MailboxError) in
            guard let folder = self.folders[name] else { throw .nonexistent(name) }
            guard uidValidity == nil || uidValidity == folder.row.uidValidity else { return }
            do throws(StoreError) { try self.index.setRenderings(renderings, folder: folder.row.id) } catch {
                throw .storage(error)
            }
        }
    }

    /// A message's preview (RFC 8970): kept in the index since the message was first seen;
    /// computed and kept now for one indexed without it, unless `compute` is false (LAZY). Nil
    /// when the message is gone (or not computed).
    public func preview(
        _ name: String,
        uid: UInt32,
        content: [UInt8]? = nil,
        compute: Bool = true
    ) throws(MailboxError) -> String? {
        let name = try Self.canonicalName(name)
        let (kept, folderID) = try self.withLock { () throws(MailboxError) -> (String?, Int64) in
            guard let folder = self.folders[name] else { throw .nonexistent(name) }
            do throws(StoreError) {
                return (try self.index.preview(folder: folder.row.id, uid: uid), folder.row.id)
            } catch {
                throw .storage(error)
            }
        }
        if let kept { return kept }
        guard compute else { return nil }
        var bytes = content
        if bytes == nil { bytes = try self.read(name, uid: uid) }
        guard let bytes, let structure = try self.structure(name, uid: uid, content: bytes) else { return nil }
        let preview = MessagePreview.make(message: bytes, structure: structure)
        try self.withLock { () throws(MailboxError) in
            // Not into a folder deleted and made again meanwhile (other messages, same UIDs).
            guard let folder = self.folders[name], folder.row.id == folderID else { return }
            do throws(StoreError) { try self.index.setPreview(preview, folder: folder.row.id, uid: uid) } catch {
                throw .storage(error)
            }
        }
        return preview
    }

    /// Changes the flags of these messages; returns the messages whose flags changed, as they
    /// are now. System flags go into the file names (so Dovecot and mutt see them), keywords
    /// into the index.
    public func setFlags(
        _ name: String,
        uids: [UInt32],
        _ change: FlagChange,
        _ names: [String]
    ) throws(MailboxError) -> [StoredMessage] {
        try self.setFlags(name, uids: uids, change, names, unchangedSince: nil).changed
    }

    /// CONDSTORE's conditional STORE (RFC 7162 §3.1.3): as `setFlags`, but a message whose
    /// MODSEQ is above `unchangedSince` is left alone and listed in `modified`; the test and the
    /// change are one step under the account's lock.
    public func setFlags(
        _ name: String,
        uids: [UInt32],
        _ change: FlagChange,
        _ names: [String],
        unchangedSince: UInt64?
    ) throws(MailboxError) -> (changed: [StoredMessage], modified: [UInt32]) {
        let name = try Self.canonicalName(name)
        return try self.withLock { () throws(MailboxError) -> (changed: [StoredMessage], modified: [UInt32]) in
            let folder = try self.syncedFolder(name)
            var modified: [UInt32] = []
            var uids = uids
            if let unchangedSince {
                modified = uids.filter { (folder.messages[$0]?.modSeq ?? 0) > unchangedSince }
                let refused = Set(modified)
                uids.removeAll { refused.contains($0) }
            }
            let directory = self.directory(name)
            let given = MessageFlags(names: names)
            func applied(_ before: MessageFlags) -> MessageFlags {
                var after = before
                switch change {
                case .add: for flag in given.names { after.insert(flag) }
                case .remove: for flag in given.names { after.remove(flag) }
                case .replace: after = given
                }
                return after
            }
            // Every message checked before any is changed: a refusal changes none.
            for uid in uids {
                guard let row = folder.messages[uid] else { continue }
                guard applied(Self.flags(of: row)).keywords.count <= Self.maximumKeywords else {
                    throw .limit("at most \(Self.maximumKeywords) keywords on a message")
                }
            }
            var rows: [(row: MailboxIndex.MessageRow, flags: MessageFlags)] = []
            var renamedInCur = false
            let own = self.beginOwnChange(folder)
            for uid in uids {
                guard var row = folder.messages[uid] else { continue }
                let before = Self.flags(of: row)
                let after = applied(before)
                guard
                    after.system != before.system
                        || Set(after.keywords.map { $0.uppercased() }) != Set(before.keywords.map { $0.uppercased() })
                else { continue }
                if after.system != before.system {
                    let renamed: String?
                    do throws(StoreError) {
                        renamed = try self.renameMessage(directory, folder: folder, uid: uid, flags: after.maildirFlags)
                    } catch {
                        throw .storage(error)
                    }
                    guard let renamed else { continue }  // expunged by another program meanwhile
                    row = folder.messages[uid] ?? row
                    row.file = renamed
                    renamedInCur = true
                }
                row.keywords = after.keywords
                rows.append((row, after))
            }
            // Counters read now: a rescan in the loop (another program's rename) may have moved them.
            var updates = MailboxIndex.Change(uidNext: folder.row.uidNext, highestModSeq: folder.row.highestModSeq)
            var changed: [StoredMessage] = []
            for (row, flags) in rows {
                var row = row
                updates.highestModSeq += 1
                row.modSeq = updates.highestModSeq
                updates.updated.append(row)
                changed.append(
                    StoredMessage(
                        uid: row.uid,
                        modSeq: row.modSeq,
                        flags: flags,
                        size: row.size,
                        internalDate: row.internalDate,
                        emailID: Self.emailID(of: row)
                    )
                )
            }
            if !updates.updated.isEmpty {
                do throws(StoreError) {
                    // Flags are no promise like a message is; still, a rename that a crash undid
                    // is rescanned, so syncing here is for the index's sake only.
                    if renamedInCur { try POSIXFile.syncDirectory(directory + "/cur") }
                    try self.commit(updates, to: folder)
                    if renamedInCur { self.adoptOwnChange(folder, since: own) }
                } catch {
                    throw .storage(error)
                }
            }
            return (changed, modified)
        }
    }

    /// Gives a message's file the letters of these system flags, other letters kept; rescans
    /// once when another program renamed it first. Returns the new name, or nil when it is gone.
    private func renameMessage(
        _ directory: String,
        folder: Folder,
        uid: UInt32,
        flags: [String]
    ) throws(StoreError) -> String? {
        for attempt in 0..<2 {
            guard let row = folder.messages[uid] else { return nil }
            let target = "cur/" + row.fileName.with(flags: flags).name
            if target == row.file { return target }
            do throws(StoreError) {
                try POSIXFile.rename(directory + "/" + row.file, directory + "/" + target)
                return target
            } catch .io(_, _, ENOENT) {
                if attempt == 1 { return nil }
                try self.sync(folder, force: true)
            }
        }
        return nil
    }

    /// Stores a new message (CRLF line ends) in a folder, durably: when this returns, the file
    /// and its directory entry are synced, and its UID is recorded.
    /// - Returns: the folder's UIDVALIDITY and the message's UID (for APPENDUID).
    public func append(
        _ name: String,
        message: [UInt8],
        flags: [String],
        internalDate: Int64?
    ) throws(MailboxError) -> (uidValidity: UInt32, uid: UInt32) {
        let name = try Self.canonicalName(name)
        let content = MaildirFiles.unixLineEnds(message)
        return try self.place(name, flags: flags, internalDate: internalDate) { temporary throws(StoreError) in
            let fd = try POSIXFile.createExclusive(temporary)
            do throws(StoreError) {
                try POSIXFile.writeAll(fd, content, path: temporary)
                try POSIXFile.syncData(fd, path: temporary)
                try POSIXFile.closeFile(fd, path: temporary)
            } catch {
                _ = try? POSIXFile.closeFile(fd, path: temporary)
                POSIXFile.remove(temporary)
                throw error
            }
        }
    }

    /// Stores a message that streamed to disk (`MailAccounts.beginUpload`, finished), as
    /// `append(_:message:...)` does; the upload's file becomes the message's.
    public func append(
        _ name: String,
        upload: AppendUpload,
        flags: [String],
        internalDate: Int64?
    ) throws(MailboxError) -> (uidValidity: UInt32, uid: UInt32) {
        let name = try Self.canonicalName(name)
        return try self.place(name, flags: flags, internalDate: internalDate) { temporary throws(StoreError) in
            try POSIXFile.rename(upload.path, temporary)
        }
    }

    /// Makes a new message of the folder: `write` puts its synced file (LF line ends) at the
    /// path it is given, in the folder's `tmp/`; then its date is set, it is renamed into `cur/`
    /// with its flags, `cur/` is synced, and its UID recorded, all under the account's lock.
    private func place(
        _ name: String,
        flags: [String],
        internalDate: Int64?,
        write: (String) throws(StoreError) -> Void
    ) throws(MailboxError) -> (uidValidity: UInt32, uid: UInt32) {
        try self.withLock { () throws(MailboxError) -> (uidValidity: UInt32, uid: UInt32) in
            let folder = try self.syncedFolder(name)
            let directory = self.directory(name)
            let flagSet = MessageFlags(names: flags)
            guard flagSet.keywords.count <= Self.maximumKeywords else {
                throw .limit("at most \(Self.maximumKeywords) keywords on a message")
            }
            let file = self.newFileName(flags: flagSet)
            let temporary = directory + "/tmp/" + file.base
            let target = directory + "/cur/" + file.name
            let description: MaildirFiles.Description
            var own: OwnChange?
            do throws(StoreError) {
                try write(temporary)
                if let internalDate { MaildirFiles.setModificationTime(temporary, seconds: internalDate) }
                guard let described = MaildirFiles.describe(temporary) else {
                    POSIXFile.remove(temporary)
                    throw StoreError.io(operation: "read", path: temporary, errno: EIO)
                }
                description = described
                own = self.beginOwnChange(folder)
                try POSIXFile.rename(temporary, target)
                try POSIXFile.syncDirectory(directory + "/cur")
            } catch {
                throw .storage(error)
            }
            var change = MailboxIndex.Change(
                uidNext: folder.row.uidNext + 1,
                highestModSeq: folder.row.highestModSeq + 1
            )
            let uid = folder.row.uidNext
            change.inserted.append(
                MailboxIndex.MessageRow(
                    uid: uid,
                    base: file.base,
                    file: "cur/" + file.name,
                    keywords: flagSet.keywords,
                    modSeq: change.highestModSeq,
                    size: description.size,
                    internalDate: description.date,
                    structure: description.structure,
                    preview: description.preview,
                    keptHeader: description.keptHeader
                )
            )
            do throws(StoreError) {
                try self.commit(change, to: folder)
            } catch {
                // Not recorded, so not promised: the file goes, or a scan would number it.
                POSIXFile.remove(target)
                throw .storage(error)
            }
            // The quota counts the disk's octets (LF line ends), as a recount would.
            self.maildirs.usage.added(self.address, bytes: Int(MaildirFiles.fileSize(target) ?? 0))
            if let own { self.adoptOwnChange(folder, since: own) }
            return (folder.row.uidValidity, uid)
        }
    }

    /// A new unique file name (maildir(5): time, microseconds, process, a counter, the host).
    func newFileName(flags: MessageFlags) -> MaildirFileName {
        self.fileCounter += 1
        let base = self.maildirs.uniqueName(id: "I\(self.fileCounter)")
        return MaildirFileName(base: base, letters: []).with(flags: flags.maildirFlags)
    }

    /// Copies messages to another folder (hard links, so no octet is written twice); their
    /// flags and keywords go with them. Durable when it returns.
    /// - Returns: the destination's UIDVALIDITY and each copied UID with its new one, in order.
    public func copy(
        uids: [UInt32],
        from source: String,
        to destination: String
    ) throws(MailboxError) -> (uidValidity: UInt32, uids: [(UInt32, UInt32)]) {
        let source = try Self.canonicalName(source)
        let destination = try Self.canonicalName(destination)
        return try self.withLock { () throws(MailboxError) -> (uidValidity: UInt32, uids: [(UInt32, UInt32)]) in
            let from = try self.syncedFolder(source)
            guard self.folders[destination] != nil else { throw .nonexistent(destination) }
            let to = try self.syncedFolder(destination)
            let sourceDirectory = self.directory(source)
            let targetDirectory = self.directory(destination)
            var change = MailboxIndex.Change(uidNext: to.row.uidNext, highestModSeq: to.row.highestModSeq + 1)
            var pairs: [(UInt32, UInt32)] = []
            var made: [String] = []
            let own = self.beginOwnChange(to)
            do throws(StoreError) {
                for uid in uids.sorted() {
                    guard let row = from.messages[uid] else { continue }
                    let flags = Self.flags(of: row)
                    let file = self.newFileName(flags: flags)
                    let target = targetDirectory + "/cur/" + file.name
                    do throws(StoreError) {
                        try POSIXFile.link(sourceDirectory + "/" + row.file, target)
                    } catch .io(_, _, ENOENT) {
                        continue  // expunged by another program meanwhile
                    }
                    made.append(target)
                    change.inserted.append(
                        MailboxIndex.MessageRow(
                            uid: change.uidNext,
                            base: file.base,
                            file: "cur/" + file.name,
                            keywords: row.keywords,
                            modSeq: change.highestModSeq,
                            size: row.size,
                            internalDate: row.internalDate,
                            structure: try self.index.structure(folder: from.row.id, uid: uid),
                            emailID: Self.emailID(of: row),
                            preview: try self.index.preview(folder: from.row.id, uid: uid)
                        )
                    )
                    pairs.append((uid, change.uidNext))
                    change.uidNext += 1
                }
                guard !pairs.isEmpty else { return (to.row.uidValidity, []) }
                try POSIXFile.syncDirectory(targetDirectory + "/cur")
                try self.commit(change, to: to)
                self.adoptOwnChange(to, since: own)
                self.maildirs.usage.added(
                    self.address,
                    bytes: made.reduce(0) { $0 + Int(MaildirFiles.fileSize($1) ?? 0) },
                    messages: made.count
                )
            } catch {
                for path in made { POSIXFile.remove(path) }
                throw .storage(error)
            }
            return (to.row.uidValidity, pairs)
        }
    }

    /// Removes messages: those of `uids` (all when nil) that have `\Deleted`, or all of `uids`
    /// when `onlyDeleted` is false (MOVE's second half). Returns the UIDs removed, ascending.
    public func expunge(_ name: String, uids: [UInt32]?, onlyDeleted: Bool = true) throws(MailboxError) -> [UInt32] {
        let name = try Self.canonicalName(name)
        return try self.withLock { () throws(MailboxError) -> [UInt32] in
            let folder = try self.syncedFolder(name)
            let directory = self.directory(name)
            let candidates = uids ?? Array(folder.messages.keys)
            var removed: [UInt32] = []
            var directories = Set<String>()
            let own = self.beginOwnChange(folder)
            for uid in candidates.sorted() {
                guard let row = folder.messages[uid] else { continue }
                if onlyDeleted && !Self.flags(of: row).system.contains(.deleted) { continue }
                let file: String?
                do throws(StoreError) {
                    file = try self.withCurrentFile(folder, uid: uid) { path throws(StoreError) in
                        guard unlink(path) == 0 else { throw StoreError(operation: "unlink", path: path, errno: errno) }
                    }
                } catch {
                    throw .storage(error)
                }
                guard let file else { continue }  // gone already: the rescan recorded it
                directories.insert(directory + "/" + file.prefix(3))
                removed.append(uid)
            }
            guard !removed.isEmpty else { return [] }
            var change = MailboxIndex.Change(uidNext: folder.row.uidNext, highestModSeq: folder.row.highestModSeq + 1)
            change.removed = removed
            do throws(StoreError) {
                for path in directories { try POSIXFile.syncDirectory(path) }
                try self.commit(change, to: folder)
            } catch {
                throw .storage(error)
            }
            self.adoptOwnChange(folder, since: own)
            return removed
        }
    }

    /// Moves messages to another folder: each file is renamed into the destination's `cur/`, one
    /// atomic step, so a message is in one folder or the other, never both and never neither,
    /// whenever a crash comes (an index behind the files is put right by the next scan: gone
    /// from one, new in the other). Flags and keywords go with them.
    /// - Returns: the destination's UIDVALIDITY and each moved UID with its new one, in order.
    public func move(
        uids: [UInt32],
        from source: String,
        to destination: String
    ) throws(MailboxError) -> (uidValidity: UInt32, uids: [(UInt32, UInt32)]) {
        let source = try Self.canonicalName(source)
        let destination = try Self.canonicalName(destination)
        return try self.withLock { () throws(MailboxError) -> (uidValidity: UInt32, uids: [(UInt32, UInt32)]) in
            let from = try self.syncedFolder(source)
            guard self.folders[destination] != nil else { throw .nonexistent(destination) }
            let to = try self.syncedFolder(destination)
            let sourceDirectory = self.directory(source)
            let targetDirectory = self.directory(destination)
            var moved: [(row: MailboxIndex.MessageRow, file: MaildirFileName, structure: MIMEPart?, preview: String?)] =
                []
            var pairs: [(UInt32, UInt32)] = []
            var directories: Set<String> = [targetDirectory + "/cur"]
            let ownTarget = self.beginOwnChange(to)
            let ownSource = self.beginOwnChange(from)
            do throws(StoreError) {
                for uid in uids.sorted() {
                    guard let row = from.messages[uid] else { continue }
                    let file = self.newFileName(flags: Self.flags(of: row))
                    let structure = try self.index.structure(folder: from.row.id, uid: uid)
                    let preview = try self.index.preview(folder: from.row.id, uid: uid)
                    let renamed = try self.withCurrentFile(from, uid: uid) { path throws(StoreError) in
                        try POSIXFile.rename(path, targetDirectory + "/cur/" + file.name)
                    }
                    guard let renamed else { continue }  // gone meanwhile
                    directories.insert(sourceDirectory + "/" + renamed.prefix(3))
                    moved.append((row, file, structure, preview))
                }
                guard !moved.isEmpty else { return (to.row.uidValidity, []) }
                for path in directories { try POSIXFile.syncDirectory(path) }
                // The counters are read only now (a rescan in the loop may have moved them), and
                // the source's after the destination's commit: they may be one folder.
                var added = MailboxIndex.Change(uidNext: to.row.uidNext, highestModSeq: to.row.highestModSeq + 1)
                for entry in moved {
                    added.inserted.append(
                        MailboxIndex.MessageRow(
                            uid: added.uidNext,
                            base: entry.file.base,
                            file: "cur/" + entry.file.name,
                            keywords: entry.row.keywords,
                            modSeq: added.highestModSeq,
                            size: entry.row.size,
                            internalDate: entry.row.internalDate,
                            structure: entry.structure,
                            emailID: Self.emailID(of: entry.row),
                            preview: entry.preview
                        )
                    )
                    pairs.append((entry.row.uid, added.uidNext))
                    added.uidNext += 1
                }
                try self.commit(added, to: to)
                var removed = MailboxIndex.Change(uidNext: from.row.uidNext, highestModSeq: from.row.highestModSeq + 1)
                removed.removed = moved.map(\.row.uid)
                try self.commit(removed, to: from)
                self.adoptOwnChange(to, since: ownTarget)
                self.adoptOwnChange(from, since: ownSource)
            } catch {
                throw .storage(error)
            }
            return (to.row.uidValidity, pairs)
        }
    }

    /// Runs `body` on the message's file; when the file is not where the index says (another
    /// program renamed it: a flag change, `new/` to `cur/`), rescans once and runs it on the new
    /// name. Returns the name (`cur/...`) `body` ran on, or nil when the message is gone.
    func withCurrentFile(
        _ folder: Folder,
        uid: UInt32,
        _ body: (String) throws(StoreError) -> Void
    ) throws(StoreError) -> String? {
        let directory = self.directory(folder.row.name)
        for attempt in 0..<2 {
            guard let row = folder.messages[uid] else { return nil }
            do {
                try body(directory + "/" + row.file)
                return row.file
            } catch .io(_, _, ENOENT) {
                if attempt == 1 { return nil }
                try self.sync(folder, force: true)
            }
        }
        return nil
    }
}
