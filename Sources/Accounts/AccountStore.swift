import Foundation
import GRDB
import MailCore
import PetrelSystem

/// A mailbox (a user who receives mail, and later logs in).
public struct MailboxAccount: Hashable, Sendable {
    public var address: AccountAddress
    public var hasPassword: Bool

    public init(address: AccountAddress, hasPassword: Bool) {
        self.address = address
        self.hasPassword = hasPassword
    }
}

/// A mailbox's own settings, kept with it (`petrel user quota`, `petrel user imap`).
public struct MailboxSettings: Hashable, Sendable {
    /// The storage quota in octets: nil for the configuration's default (`quota.storage`), 0 for
    /// none.
    public var storageQuota: UInt64?
    /// IMAP capabilities not offered to this user (upper case): a switch for a client that
    /// misbehaves with one (`COMPRESS=DEFLATE`, `QRESYNC`, ...).
    public var disabledIMAPCapabilities: [String]

    public init(storageQuota: UInt64? = nil, disabledIMAPCapabilities: [String] = []) {
        self.storageQuota = storageQuota
        self.disabledIMAPCapabilities = disabledIMAPCapabilities
    }
}

/// An alias: an address whose mail goes to other addresses.
public struct Alias: Hashable, Sendable {
    public var address: AccountAddress
    public var targets: [AccountAddress]

    public init(address: AccountAddress, targets: [AccountAddress]) {
        self.address = address
        self.targets = targets
    }
}

/// Mailboxes and aliases in SQLite (`DATA_DIR/accounts.sqlite`, through GRDB).
///
/// SQLite's WAL mode lets the running server read while `petrel user add` writes from another
/// process; every change is one transaction, so the server sees it completely or not at all, and
/// sees it at once: each RCPT TO reads the current state, there is no cache to go stale.
public final class AccountStore: Sendable {
    private let database: DatabasePool
    public let path: String

    public init(path: String) throws {
        // The database holds password hashes and SCRAM keys: owner only. SQLite makes its -wal and
        // -shm files with the database's mode, so making the database 0600 before SQLite first
        // opens it covers all three; a database from before this rule is narrowed now.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        for file in [path, path + "-wal", path + "-shm"] { _ = chmod(file, 0o600) }
        var configuration = Configuration()
        // A CLI change and the server may meet on the write lock; wait instead of failing.
        configuration.busyMode = .timeout(10)
        configuration.label = "accounts"
        self.database = try DatabasePool(path: path, configuration: configuration)
        self.path = path
        try Self.migrator.migrate(self.database)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE mailboxes (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        address TEXT NOT NULL UNIQUE,
                        domain TEXT NOT NULL,
                        password_hash TEXT,
                        created_at INTEGER NOT NULL
                    );
                    CREATE INDEX mailboxes_domain ON mailboxes(domain, id);
                    CREATE TABLE aliases (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        address TEXT NOT NULL UNIQUE,
                        created_at INTEGER NOT NULL
                    );
                    CREATE TABLE alias_targets (
                        alias_id INTEGER NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL,
                        target TEXT NOT NULL,
                        PRIMARY KEY (alias_id, position)
                    );
                    """
            )
        }
        migrator.registerMigration("v2: SCRAM-SHA-256 credentials") { db in
            try db.execute(
                sql: """
                    ALTER TABLE mailboxes ADD COLUMN scram_salt BLOB;
                    ALTER TABLE mailboxes ADD COLUMN scram_iterations INTEGER;
                    ALTER TABLE mailboxes ADD COLUMN scram_stored_key BLOB;
                    ALTER TABLE mailboxes ADD COLUMN scram_server_key BLOB;
                    """
            )
        }
        migrator.registerMigration("v3: server secrets, sender addresses") { db in
            // Secrets the server derives answers from that must not change at a restart (the SCRAM
            // salts of users that do not exist), kept with the accounts they protect.
            // Sender addresses: what a mailbox may send as besides its own addresses and the
            // aliases that reach it; "@domain" stands for every address of a domain.
            try db.execute(
                sql: """
                    CREATE TABLE secrets (
                        name TEXT PRIMARY KEY,
                        value BLOB NOT NULL
                    );
                    CREATE TABLE sender_addresses (
                        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
                        address TEXT NOT NULL,
                        PRIMARY KEY (mailbox_id, address)
                    );
                    """
            )
        }
        migrator.registerMigration("v4: quotas, IMAP switches") { db in
            // NULL: the configuration's default quota; 0: none. The switches: capability names,
            // space-separated.
            try db.execute(
                sql: """
                    ALTER TABLE mailboxes ADD COLUMN storage_quota INTEGER;
                    ALTER TABLE mailboxes ADD COLUMN imap_disabled TEXT NOT NULL DEFAULT '';
                    """
            )
        }
        return migrator
    }

    // MARK: - Settings

    /// A mailbox's settings; nil when there is no such mailbox.
    public func settings(for address: AccountAddress) async throws -> MailboxSettings? {
        try await self.database.read { db in try Self.settings(address, db) }
    }

    /// The same, for the CLI.
    public func readSettings(for address: AccountAddress) throws -> MailboxSettings {
        try self.database.read { db in
            guard let settings = try Self.settings(address, db) else {
                throw AccountError.notFound(address.description)
            }
            return settings
        }
    }

    public func setSettings(_ settings: MailboxSettings, for address: AccountAddress) throws {
        try self.database.write { db in
            guard try Self.mailboxID(address, db) != nil else { throw AccountError.notFound(address.description) }
            try db.execute(
                sql: "UPDATE mailboxes SET storage_quota = ?, imap_disabled = ? WHERE address = ?",
                arguments: [
                    settings.storageQuota.map { Int64(clamping: $0) },
                    settings.disabledIMAPCapabilities.map { $0.uppercased() }.joined(separator: " "),
                    address.description,
                ]
            )
        }
    }

    private static func settings(_ address: AccountAddress, _ db: Database) throws -> MailboxSettings? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: "SELECT storage_quota, imap_disabled FROM mailboxes WHERE address = ?",
                arguments: [address.description]
            )
        else { return nil }
        let disabled: String = row["imap_disabled"]
        return MailboxSettings(
            storageQuota: (row["storage_quota"] as Int64?).map { UInt64(max(0, $0)) },
            disabledIMAPCapabilities: disabled.split(separator: " ").map(String.init)
        )
    }

    // MARK: - Management (the CLI)

    public func addMailbox(_ address: AccountAddress, password: PasswordCredentials?) throws {
        try self.database.write { db in
            if try Self.exists(address, table: "mailboxes", db) || Self.exists(address, table: "aliases", db) {
                throw AccountError.alreadyExists(address.description)
            }
            try db.execute(
                sql: "INSERT INTO mailboxes (address, domain, created_at) VALUES (?, ?, ?)",
                arguments: [address.description, address.domain, Int64(time(nil))]
            )
            try Self.store(password, for: address, db)
        }
    }

    /// Sets (or with nil, removes) a mailbox's password.
    public func setPassword(_ password: PasswordCredentials?, for address: AccountAddress) throws {
        try self.database.write { db in
            guard try Self.exists(address, table: "mailboxes", db) else {
                throw AccountError.notFound(address.description)
            }
            try Self.store(password, for: address, db)
        }
    }

    private static func store(_ password: PasswordCredentials?, for address: AccountAddress, _ db: Database) throws {
        try db.execute(
            sql: """
                UPDATE mailboxes SET password_hash = ?, scram_salt = ?, scram_iterations = ?, scram_stored_key = ?,
                scram_server_key = ? WHERE address = ?
                """,
            arguments: [
                password?.cryptHash, password?.scram.map { Data($0.salt) }, password?.scram?.iterations,
                password?.scram.map { Data($0.storedKey) }, password?.scram.map { Data($0.serverKey) },
                address.description,
            ]
        )
    }

    /// The stored password credentials of a mailbox; nil when there is no such mailbox or it has
    /// no password.
    public func passwordCredentials(for address: AccountAddress) async throws -> PasswordCredentials? {
        try await self.database.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT password_hash, scram_salt, scram_iterations, scram_stored_key, scram_server_key
                        FROM mailboxes WHERE address = ?
                        """,
                    arguments: [address.description]
                ),
                let hash = row["password_hash"] as String?
            else { return nil }
            var scram: SCRAMCredentials?
            if let salt = row["scram_salt"] as Data?, let iterations = row["scram_iterations"] as Int?,
                let storedKey = row["scram_stored_key"] as Data?, let serverKey = row["scram_server_key"] as Data?
            {
                scram = SCRAMCredentials(
                    salt: Array(salt),
                    iterations: iterations,
                    storedKey: Array(storedKey),
                    serverKey: Array(serverKey)
                )
            }
            return PasswordCredentials(cryptHash: hash, scram: scram)
        }
    }

    /// Removes a mailbox; its mail on disk stays. Returns the aliases that pointed at it.
    @discardableResult
    public func removeMailbox(_ address: AccountAddress) throws -> [AccountAddress] {
        try self.database.write { db in
            try db.execute(sql: "DELETE FROM mailboxes WHERE address = ?", arguments: [address.description])
            guard db.changesCount > 0 else { throw AccountError.notFound(address.description) }
            return try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT a.address FROM aliases a JOIN alias_targets t ON t.alias_id = a.id
                    WHERE t.target = ? ORDER BY a.address
                    """,
                arguments: [address.description]
            ).compactMap { try? AccountAddress(validating: $0) }
        }
    }

    public func mailboxes() throws -> [MailboxAccount] {
        try self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT address, password_hash FROM mailboxes ORDER BY domain, address").map {
                row in
                MailboxAccount(
                    address: try AccountAddress(validating: row["address"]),
                    hasPassword: (row["password_hash"] as String?) != nil
                )
            }
        }
    }

    public func addAlias(_ address: AccountAddress, targets: [AccountAddress]) throws {
        try self.database.write { db in
            if try Self.exists(address, table: "mailboxes", db) || Self.exists(address, table: "aliases", db) {
                throw AccountError.alreadyExists(address.description)
            }
            try db.execute(
                sql: "INSERT INTO aliases (address, created_at) VALUES (?, ?)",
                arguments: [address.description, Int64(time(nil))]
            )
            let id = db.lastInsertedRowID
            for (position, target) in targets.enumerated() {
                try db.execute(
                    sql: "INSERT INTO alias_targets (alias_id, position, target) VALUES (?, ?, ?)",
                    arguments: [id, position, target.description]
                )
            }
        }
    }

    public func removeAlias(_ address: AccountAddress) throws {
        try self.database.write { db in
            try db.execute(sql: "DELETE FROM aliases WHERE address = ?", arguments: [address.description])
            guard db.changesCount > 0 else { throw AccountError.notFound(address.description) }
        }
    }

    public func aliases() throws -> [Alias] {
        try self.database.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT a.address, t.target FROM aliases a JOIN alias_targets t ON t.alias_id = a.id
                    ORDER BY a.address, t.position
                    """
            )
            var result: [Alias] = []
            for row in rows {
                let address = try AccountAddress(validating: row["address"])
                let target = try AccountAddress(validating: row["target"])
                if result.last?.address == address {
                    result[result.count - 1].targets.append(target)
                } else {
                    result.append(Alias(address: address, targets: [target]))
                }
            }
            return result
        }
    }

    /// Whether the address names a mailbox or an alias.
    public func exists(_ address: AccountAddress) throws -> Bool {
        try self.database.read { db in
            try Self.exists(address, table: "mailboxes", db) || Self.exists(address, table: "aliases", db)
        }
    }

    // MARK: - Sender addresses

    /// Lets a mailbox send as `address` too (a role address, or "@domain" for a whole domain):
    /// in MAIL FROM and in the From and Sender fields of what it submits.
    public func addSenderAddress(_ address: SenderAddress, for mailbox: AccountAddress) throws {
        try self.database.write { db in
            guard let id = try Self.mailboxID(mailbox, db) else { throw AccountError.notFound(mailbox.description) }
            try db.execute(
                sql: "INSERT OR IGNORE INTO sender_addresses (mailbox_id, address) VALUES (?, ?)",
                arguments: [id, address.description]
            )
        }
    }

    public func removeSenderAddress(_ address: SenderAddress, for mailbox: AccountAddress) throws {
        try self.database.write { db in
            guard let id = try Self.mailboxID(mailbox, db) else { throw AccountError.notFound(mailbox.description) }
            try db.execute(
                sql: "DELETE FROM sender_addresses WHERE mailbox_id = ? AND address = ?",
                arguments: [id, address.description]
            )
            guard db.changesCount > 0 else {
                throw AccountError.notFound("sender address \(address) of \(mailbox)")
            }
        }
    }

    /// The extra sender addresses of a mailbox, sorted.
    public func senderAddresses(for mailbox: AccountAddress) async throws -> [SenderAddress] {
        try await self.database.read { db in try Self.senderAddresses(mailbox, db) }
    }

    /// The same, for the CLI (no async context there).
    public func listSenderAddresses(for mailbox: AccountAddress) throws -> [SenderAddress] {
        try self.database.read { db in
            guard try Self.mailboxID(mailbox, db) != nil else { throw AccountError.notFound(mailbox.description) }
            return try Self.senderAddresses(mailbox, db)
        }
    }

    private static func senderAddresses(_ mailbox: AccountAddress, _ db: Database) throws -> [SenderAddress] {
        try String.fetchAll(
            db,
            sql: """
                SELECT s.address FROM sender_addresses s JOIN mailboxes m ON m.id = s.mailbox_id
                WHERE m.address = ? ORDER BY s.address
                """,
            arguments: [mailbox.description]
        ).compactMap { try? SenderAddress(validating: $0) }
    }

    private static func mailboxID(_ address: AccountAddress, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT id FROM mailboxes WHERE address = ?", arguments: [address.description])
    }

    // MARK: - Server secrets

    /// A random secret of `length` octets, made the first time it is asked for and the same
    /// ever after (and for every process sharing this database).
    public func secret(named name: String, length: Int = 32) throws -> [UInt8] {
        try self.database.write { db in
            if let value = try Data.fetchOne(db, sql: "SELECT value FROM secrets WHERE name = ?", arguments: [name]) {
                return Array(value)
            }
            var generator = SystemRandomNumberGenerator()
            let value = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try db.execute(sql: "INSERT INTO secrets (name, value) VALUES (?, ?)", arguments: [name, Data(value)])
            return value
        }
    }

    // MARK: - Delivery (the server)

    /// Whether `user` may send as `address` (RFC 6409 §6.1, and the From and Sender fields of
    /// what it submits): its own address, a subaddress of it, an alias that reaches it, or one of
    /// its sender addresses. One consistent read.
    public func may(
        _ user: AccountAddress,
        sendAs address: AccountAddress,
        with resolver: RecipientResolver
    )
        async throws -> Bool
    {
        try await self.database.read { db in
            if case .mailboxes(let list) = try resolver.resolve(address, in: SQLiteLookup(db: db)), list.contains(user)
            {
                return true
            }
            return try Self.senderAddresses(user, db).contains { $0.permits(address) }
        }
    }

    /// Resolves a recipient against the current directory, in one consistent read.
    public func resolve(_ path: ForwardPath, with resolver: RecipientResolver) async throws -> Resolution {
        try await self.database.read { db in
            try resolver.resolve(path, in: SQLiteLookup(db: db))
        }
    }

    private static func exists(_ address: AccountAddress, table: String, _ db: Database) throws -> Bool {
        try Bool.fetchOne(
            db,
            sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE address = ?)",
            arguments: [
                address.description
            ]
        ) ?? false
    }
}

private struct SQLiteLookup: DirectoryLookup {
    let db: Database

    func isMailbox(_ address: AccountAddress) throws -> Bool {
        try Bool.fetchOne(
            self.db,
            sql: "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE address = ?)",
            arguments: [address.description]
        ) ?? false
    }

    func aliasTargets(_ address: AccountAddress) throws -> [AccountAddress]? {
        let rows = try Row.fetchAll(
            self.db,
            sql: """
                SELECT a.id, t.target FROM aliases a LEFT JOIN alias_targets t ON t.alias_id = a.id
                WHERE a.address = ? ORDER BY t.position
                """,
            arguments: [address.description]
        )
        guard !rows.isEmpty else { return nil }
        return rows.compactMap { row in (row["target"] as String?).flatMap { try? AccountAddress(validating: $0) } }
    }

    func firstMailbox(inDomain domain: String) throws -> AccountAddress? {
        try String.fetchOne(
            self.db,
            sql: "SELECT address FROM mailboxes WHERE domain = ? ORDER BY id LIMIT 1",
            arguments: [domain]
        ).flatMap { try? AccountAddress(validating: $0) }
    }
}
