import Foundation
import GRDB
import MailCore
import PetrelSystem

/// One account's IMAP index, in SQLite (`mail/<address>/petrel-index.sqlite`, through GRDB):
/// each folder's UIDVALIDITY, UIDNEXT and highest MODSEQ, and each message's UID, MODSEQ,
/// keywords, size and cached structure, keyed by its Maildir base name.
///
/// The Maildir stays the truth: this file only remembers what IMAP must keep stable (UIDs) and
/// what is costly to compute again. It lives inside the Maildir so that it goes with it; Dovecot
/// and mutt ignore files there that are not folders. When it is lost, unreadable or of an
/// unknown schema, it is set aside and rebuilt from the Maildir with new UIDVALIDITY values, as
/// RFC 9051 §2.3.1.1 requires when UIDs cannot be kept.
final class MailboxIndex {
    static let fileName = "petrel-index.sqlite"

    struct FolderRow {
        var id: Int64
        var name: String
        var uidValidity: UInt32
        var uidNext: UInt32
        var highestModSeq: UInt64
        var subscribed: Bool
        /// Expunges at or below this MODSEQ are no longer known one by one (their tombstones
        /// were pruned, or happened before the index kept any).
        var vanishedFloor: UInt64 = 0
    }

    struct MessageRow {
        var uid: UInt32
        var base: String
        /// `new/NAME` or `cur/NAME`, relative to the folder.
        var file: String
        var keywords: [String]
        var modSeq: UInt64
        var size: Int
        var internalDate: Int64
        /// Written with a new row; not read back with the others (`structure` reads it).
        var structure: MIMEPart?
        /// OBJECTID's EMAILID when it is not the one the base name gives (a COPY or MOVE keeps
        /// its source's).
        var emailID: String? = nil
        /// PREVIEW's text, written with a new row (`preview` reads it).
        var preview: String? = nil
        /// The header fields the structure keeps, written with a new row (`keptHeaders`).
        var keptHeader: [UInt8]? = nil

        /// The file's name, without its `new/` or `cur/`.
        var fileName: MaildirFileName { MaildirFileName(String(self.file.dropFirst(4))) }
    }

    private let database: DatabaseQueue
    let path: String

    /// Why an index is set aside and rebuilt rather than used.
    struct Unusable: Error {
        var reason: String
    }

    /// Opens (or makes) the index. One that is damaged (not SQLite, corrupt) or of a schema this
    /// version does not know (written by a later one) is renamed `*.damaged-<time>` and a new one
    /// made, so its folders get new UIDVALIDITY values. Any other failure (the disk, a lock) is
    /// an error: the index is not thrown away for what may pass.
    init(path: String) throws(StoreError) {
        self.path = path
        do {
            self.database = try Self.openDatabase(path)
        } catch let error where Self.isDamage(error) {
            let aside = path + ".damaged-\(time(nil))"
            _ = rename(path, aside)
            for suffix in ["-wal", "-shm"] { _ = unlink(path + suffix) }
            do {
                self.database = try Self.openDatabase(path)
            } catch {
                throw StoreError.io(operation: "make a new index (\(error))", path: path, errno: EIO)
            }
        } catch {
            throw StoreError.io(operation: "open index (\(error))", path: path, errno: EIO)
        }
    }

    static func isDamage(_ error: any Error) -> Bool {
        if error is Unusable { return true }
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }

    private static func openDatabase(_ path: String) throws -> DatabaseQueue {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "mailbox index"
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            // FULL: a UID given out (APPENDUID) must not be given again after a power cut.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        if try queue.read({ try Self.migrator.hasBeenSuperseded($0) }) {
            throw Unusable(reason: "written by a later version")
        }
        try Self.migrator.migrate(queue)
        return queue
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE folders (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        name TEXT NOT NULL UNIQUE,
                        uid_validity INTEGER NOT NULL,
                        uid_next INTEGER NOT NULL,
                        highest_modseq INTEGER NOT NULL,
                        subscribed INTEGER NOT NULL
                    );
                    CREATE TABLE messages (
                        folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
                        uid INTEGER NOT NULL,
                        base TEXT NOT NULL,
                        file TEXT NOT NULL,
                        keywords TEXT NOT NULL,
                        modseq INTEGER NOT NULL,
                        size INTEGER NOT NULL,
                        internal_date INTEGER NOT NULL,
                        summary BLOB,
                        PRIMARY KEY (folder, uid)
                    ) WITHOUT ROWID;
                    CREATE UNIQUE INDEX messages_base ON messages(folder, base);
                    CREATE TABLE settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v2-vanished") { db in
            // QRESYNC's tombstones: which UIDs left a folder, at which MODSEQ and when. What an
            // index of v1 forgot (its expunges) lies at or below each folder's floor.
            try db.execute(
                sql: """
                    CREATE TABLE vanished (
                        folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
                        modseq INTEGER NOT NULL,
                        uid INTEGER NOT NULL,
                        at INTEGER NOT NULL,
                        PRIMARY KEY (folder, modseq, uid)
                    ) WITHOUT ROWID;
                    ALTER TABLE folders ADD COLUMN vanished_floor INTEGER NOT NULL DEFAULT 0;
                    UPDATE folders SET vanished_floor = highest_modseq;
                    """
            )
        }
        migrator.registerMigration("v3-objectid-preview") { db in
            // OBJECTID's EMAILID when a COPY or MOVE carried one over (NULL: the one the base name
            // gives), and PREVIEW's text (NULL: not computed yet).
            try db.execute(
                sql: """
                    ALTER TABLE messages ADD COLUMN email_id TEXT;
                    ALTER TABLE messages ADD COLUMN preview TEXT;
                    """
            )
        }
        migrator.registerMigration("v4-renderings") { db in
            // IMAP's ENVELOPE and BODYSTRUCTURE as the server writes them (when ASCII, so the
            // same for every client), made at a message's first FETCH: a FETCH of thousands
            // then reads them in one query, as Dovecot reads its cache.
            try db.execute(
                sql: """
                    ALTER TABLE messages ADD COLUMN imap_envelope BLOB;
                    ALTER TABLE messages ADD COLUMN imap_bodystructure BLOB;
                    """
            )
        }
        migrator.registerMigration("v5-kept-header") { db in
            // The top-level header fields a SEARCH by FROM, TO, CC, BCC, SUBJECT or a sent date
            // reads, so that it reads no message file (Dovecot keeps them in its cache).
            try db.execute(sql: "ALTER TABLE messages ADD COLUMN kept_header BLOB")
        }
        migrator.registerMigration("v6-kept-header-table") { db in
            // A narrow table of their own: as the message row's last column they sat behind its
            // structure and renderings, in overflow pages that every read walked (half of a
            // SEARCH FROM). The old column stays, empty.
            try db.execute(
                sql: """
                    CREATE TABLE kept_headers (
                        folder INTEGER NOT NULL,
                        uid INTEGER NOT NULL,
                        header BLOB NOT NULL,
                        PRIMARY KEY (folder, uid)
                    ) WITHOUT ROWID;
                    INSERT INTO kept_headers (folder, uid, header)
                        SELECT folder, uid, kept_header FROM messages WHERE kept_header IS NOT NULL;
                    UPDATE messages SET kept_header = NULL WHERE kept_header IS NOT NULL;
                    """
            )
        }
        return migrator
    }

    private func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try self.database.write(body)
        } catch {
            throw StoreError.io(operation: "write index (\(error))", path: self.path, errno: EIO)
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try self.database.read(body)
        } catch {
            throw StoreError.io(operation: "read index (\(error))", path: self.path, errno: EIO)
        }
    }

    func folders() throws(StoreError) -> [FolderRow] {
        try self.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM folders").map { row in
                FolderRow(
                    id: row["id"],
                    name: row["name"],
                    uidValidity: UInt32(truncatingIfNeeded: row["uid_validity"] as Int64),
                    uidNext: UInt32(truncatingIfNeeded: row["uid_next"] as Int64),
                    highestModSeq: UInt64(row["highest_modseq"] as Int64),
                    subscribed: row["subscribed"],
                    vanishedFloor: UInt64(row["vanished_floor"] as Int64)
                )
            }
        }
    }

    /// A new folder row, with a UIDVALIDITY above every one this index gave before (the time,
    /// or one more than the last, so that a folder made again never reuses one).
    func addFolder(_ name: String, subscribed: Bool) throws(StoreError) -> FolderRow {
        try self.write { db in
            let last = try Int64.fetchOne(db, sql: "SELECT value FROM settings WHERE name = 'last_uid_validity'") ?? 0
            let validity = max(Int64(time(nil)) & 0xFFFF_FFFF, last + 1)
            try db.execute(
                sql: "INSERT OR REPLACE INTO settings (name, value) VALUES ('last_uid_validity', ?)",
                arguments: [validity]
            )
            try db.execute(
                sql: """
                    INSERT INTO folders (name, uid_validity, uid_next, highest_modseq, subscribed)
                    VALUES (?, ?, 1, 1, ?)
                    """,
                arguments: [name, validity, subscribed]
            )
            return FolderRow(
                id: db.lastInsertedRowID,
                name: name,
                uidValidity: UInt32(truncatingIfNeeded: validity),
                uidNext: 1,
                highestModSeq: 1,
                subscribed: subscribed
            )
        }
    }

    func removeFolder(_ id: Int64) throws(StoreError) {
        try self.write { db in
            try db.execute(sql: "DELETE FROM messages WHERE folder = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM kept_headers WHERE folder = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM vanished WHERE folder = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM folders WHERE id = ?", arguments: [id])
        }
    }

    func renameFolder(_ id: Int64, to name: String) throws(StoreError) {
        try self.write { db in
            try db.execute(sql: "UPDATE folders SET name = ? WHERE id = ?", arguments: [name, id])
        }
    }

    func setSubscribed(_ id: Int64, _ subscribed: Bool) throws(StoreError) {
        try self.write { db in
            try db.execute(sql: "UPDATE folders SET subscribed = ? WHERE id = ?", arguments: [subscribed, id])
        }
    }

    func messages(folder: Int64) throws(StoreError) -> [MessageRow] {
        try self.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT uid, base, file, keywords, modseq, size, internal_date, email_id FROM messages
                    WHERE folder = ?
                    """,
                arguments: [folder]
            ).map { row in
                let keywords: String = row["keywords"]
                return MessageRow(
                    uid: UInt32(truncatingIfNeeded: row["uid"] as Int64),
                    base: row["base"],
                    file: row["file"],
                    keywords: keywords.isEmpty ? [] : keywords.split(separator: " ").map(String.init),
                    modSeq: UInt64(row["modseq"] as Int64),
                    size: row["size"],
                    internalDate: row["internal_date"],
                    emailID: row["email_id"]
                )
            }
        }
    }

    /// One change to a folder's messages, written in one transaction with its counters.
    struct Change {
        var inserted: [MessageRow] = []
        var updated: [MessageRow] = []
        var removed: [UInt32] = []
        var uidNext: UInt32
        var highestModSeq: UInt64
    }

    func apply(_ change: Change, folder: Int64) throws(StoreError) {
        try self.write { db in
            let now = Int64(time(nil))
            for uid in change.removed {
                try db.execute(sql: "DELETE FROM messages WHERE folder = ? AND uid = ?", arguments: [folder, uid])
                try db.execute(sql: "DELETE FROM kept_headers WHERE folder = ? AND uid = ?", arguments: [folder, uid])
                try db.execute(
                    sql: "INSERT OR REPLACE INTO vanished (folder, modseq, uid, at) VALUES (?, ?, ?, ?)",
                    arguments: [folder, Int64(change.highestModSeq), uid, now]
                )
            }
            for row in change.inserted {
                try db.execute(
                    sql: """
                        INSERT INTO messages
                            (folder, uid, base, file, keywords, modseq, size, internal_date, summary, email_id, preview)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        folder, row.uid, row.base, row.file, row.keywords.joined(separator: " "),
                        Int64(row.modSeq), row.size, row.internalDate, row.structure.flatMap(Self.encode),
                        row.emailID, row.preview,
                    ]
                )
                if let header = row.keptHeader {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO kept_headers (folder, uid, header) VALUES (?, ?, ?)",
                        arguments: [folder, row.uid, Data(header)]
                    )
                }
            }
            for row in change.updated {
                try db.execute(
                    sql: "UPDATE messages SET file = ?, keywords = ?, modseq = ? WHERE folder = ? AND uid = ?",
                    arguments: [row.file, row.keywords.joined(separator: " "), Int64(row.modSeq), folder, row.uid]
                )
            }
            try db.execute(
                sql: "UPDATE folders SET uid_next = ?, highest_modseq = ? WHERE id = ?",
                arguments: [change.uidNext, Int64(change.highestModSeq), folder]
            )
        }
    }

    /// UIDs that left the folder at a MODSEQ above `modSeq`, ascending.
    func vanished(folder: Int64, since modSeq: UInt64) throws(StoreError) -> [UInt32] {
        try self.read { db in
            try Int64.fetchAll(
                db,
                sql: "SELECT uid FROM vanished WHERE folder = ? AND modseq > ? ORDER BY uid",
                arguments: [folder, Int64(modSeq)]
            ).map { UInt32(truncatingIfNeeded: $0) }
        }
    }

    /// Forgets tombstones older than `before` (seconds since 1970), and the oldest beyond the
    /// `keep` newest; the folder's floor rises to the highest MODSEQ forgotten. Returns the new
    /// floor, or nil when nothing was forgotten.
    func pruneVanished(folder: Int64, before: Int64, keep: Int = 100_000) throws(StoreError) -> UInt64? {
        try self.write { db in
            let byAge = try Int64.fetchOne(
                db,
                sql: "SELECT MAX(modseq) FROM vanished WHERE folder = ? AND at < ?",
                arguments: [folder, before]
            )
            let byCount = try Int64.fetchOne(
                db,
                sql: "SELECT modseq FROM vanished WHERE folder = ? ORDER BY modseq DESC LIMIT 1 OFFSET ?",
                arguments: [folder, keep]
            )
            guard let highest = [byAge, byCount].compactMap({ $0 }).max() else { return nil }
            try db.execute(
                sql: "DELETE FROM vanished WHERE folder = ? AND modseq <= ?",
                arguments: [folder, highest]
            )
            try db.execute(
                sql: "UPDATE folders SET vanished_floor = MAX(vanished_floor, ?) WHERE id = ?",
                arguments: [highest, folder]
            )
            return UInt64(highest)
        }
    }

    /// A message's MIME structure, as kept (JSON of `MIMEPart`); nil when none is kept or what
    /// is kept cannot be read (then it is computed again).
    func structure(folder: Int64, uid: UInt32) throws(StoreError) -> MIMEPart? {
        try self.read { db in
            let row = try Row.fetchOne(
                db,
                sql: "SELECT summary FROM messages WHERE folder = ? AND uid = ?",
                arguments: [folder, uid]
            )
            guard let data = row?["summary"] as Data? else { return nil }
            return try? JSONDecoder().decode(MIMEPart.self, from: data)
        }
    }

    func setStructure(_ structure: MIMEPart, folder: Int64, uid: UInt32) throws(StoreError) {
        guard let data = Self.encode(structure) else { return }
        try self.write { db in
            try db.execute(
                sql: "UPDATE messages SET summary = ? WHERE folder = ? AND uid = ?",
                arguments: [data, folder, uid]
            )
        }
    }

    /// The kept ENVELOPE and BODYSTRUCTURE renderings of the messages with UIDs in `uids`.
    func renderings(folder: Int64, uids: [UInt32]) throws(StoreError) -> [UInt32: MailAccount.Renderings] {
        guard !uids.isEmpty else { return [:] }
        return try self.read { db in
            var result: [UInt32: MailAccount.Renderings] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT uid, imap_envelope, imap_bodystructure FROM messages
                    WHERE folder = ? AND uid IN (\(Self.placeholders(uids.count)))
                    AND (imap_envelope IS NOT NULL OR imap_bodystructure IS NOT NULL)
                    """,
                arguments: StatementArguments([folder] + uids.map { Int64($0) })
            )
            while let row = try rows.next() {
                let envelope = (row["imap_envelope"] as Data?).map { Array($0) }
                let bodyStructure = (row["imap_bodystructure"] as Data?).map { Array($0) }
                result[UInt32(truncatingIfNeeded: row["uid"] as Int64)] = MailAccount.Renderings(
                    envelope: envelope,
                    bodyStructure: bodyStructure
                )
            }
            return result
        }
    }

    func setRenderings(_ renderings: [UInt32: MailAccount.Renderings], folder: Int64) throws(StoreError) {
        try self.write { db in
            for (uid, rendering) in renderings {
                try db.execute(
                    sql: """
                        UPDATE messages SET imap_envelope = COALESCE(?, imap_envelope),
                            imap_bodystructure = COALESCE(?, imap_bodystructure)
                        WHERE folder = ? AND uid = ?
                        """,
                    arguments: [
                        rendering.envelope.map { Data($0) }, rendering.bodyStructure.map { Data($0) }, folder, uid,
                    ]
                )
            }
        }
    }

    /// The kept header fields of the messages with UIDs in `uids` that have them.
    func keptHeaders(folder: Int64, uids: [UInt32]) throws(StoreError) -> [UInt32: [UInt8]] {
        guard !uids.isEmpty else { return [:] }
        return try self.read { db in
            var result: [UInt32: [UInt8]] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT uid, header FROM kept_headers
                    WHERE folder = ? AND uid IN (\(Self.placeholders(uids.count)))
                    """,
                arguments: StatementArguments([folder] + uids.map { Int64($0) })
            )
            while let row = try rows.next() {
                result[UInt32(truncatingIfNeeded: row[0] as Int64)] = try row.withUnsafeData(atIndex: 1) { data in
                    data.map { Array($0) } ?? []
                }
            }
            return result
        }
    }

    /// A message's preview as kept; nil when none is (then it is computed and kept).
    func preview(folder: Int64, uid: UInt32) throws(StoreError) -> String? {
        try self.read { db in
            try String.fetchOne(
                db,
                sql: "SELECT preview FROM messages WHERE folder = ? AND uid = ?",
                arguments: [folder, uid]
            )
        }
    }

    func setPreview(_ preview: String, folder: Int64, uid: UInt32) throws(StoreError) {
        try self.write { db in
            try db.execute(
                sql: "UPDATE messages SET preview = ? WHERE folder = ? AND uid = ?",
                arguments: [preview, folder, uid]
            )
        }
    }

    /// `?, ?, ?` for an IN list of exactly the UIDs asked (callers ask for a thousand at most).
    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    static func encode(_ structure: MIMEPart) -> Data? {
        try? JSONEncoder().encode(structure)
    }
}
