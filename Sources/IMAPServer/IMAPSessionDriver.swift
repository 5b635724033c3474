import IMAPCore
import Logging
import MailCore
import MailStore
import NIOCore

/// Carries out one session's commands: the `IMAPSession` state machine says what a command
/// means in its state, the selected mailbox's view (`IMAPSelectedMailbox`) keeps sequence
/// numbers straight, and the user's `MailAccount` does the work. No sockets: responses go out
/// through `write`, so the tests drive a session from command text alone. Authentication and
/// IDLE need the client's next lines and are run by `IMAPConnection`, which owns the framer.
final class IMAPSessionDriver {
    typealias Write = (ByteBuffer) async throws -> Void

    var session: IMAPSession
    var selected: IMAPSelectedMailbox?
    var account: MailAccount?
    let accounts: MailAccounts
    /// Logins' side of the accounts: the user's settings (quota, switched-off capabilities).
    let service: any IMAPAccountService
    let client: IMAPClient
    let logger: Logger
    /// Commands carried out, and those that failed, for the session's log line.
    var commands = 0
    var failures = 0
    /// The selected mailbox's HIGHESTMODSEQ when the client last heard of its changes.
    var highestModSeq: UInt64?
    /// The message of an APPEND whose literal came as a stream (`IMAPConnection` writes it to
    /// disk as it comes); the APPEND takes it, or it is abandoned.
    var upload: AppendUpload?

    init(
        session: IMAPSession,
        accounts: MailAccounts,
        service: any IMAPAccountService,
        client: IMAPClient,
        logger: Logger
    ) {
        self.session = session
        self.accounts = accounts
        self.service = service
        self.client = client
        self.logger = logger
    }

    var encoder: IMAPResponseEncoder { IMAPResponseEncoder(utf8: self.session.utf8) }

    func encode(_ responses: [IMAPResponse]) -> ByteBuffer {
        var out = ByteBuffer()
        let encoder = self.encoder
        for response in responses { encoder.encode(response, into: &out) }
        return out
    }

    /// The user logged in: their mailboxes are opened (special-use folders made on first use).
    func loggedIn(_ user: String) async throws(MailboxError) {
        self.account = try await self.accounts.account(user)
        let settings = await self.service.settings(user: user)
        self.session.authenticated(user: user, disabled: settings.disabledCapabilities)
    }

    /// Carries out a mailbox command; returns the status of its tagged response (BAD counts as an
    /// error in a row).
    func perform(_ command: TaggedCommand, write: Write) async throws -> IMAPStatus {
        self.commands += 1
        let tag = command.tag
        guard let account = self.account else {
            try await write(self.encode([.tagged(tag, .bad, nil, "log in first")]))
            return .bad
        }
        let condStoreEnabled = self.session.enableCondStore(for: command.command)
        do throws(IMAPFailure) {
            var responses = try await self.run(command, account: account, write: write)
            // RFC 7162 §3.1: a CONDSTORE-enabling command other than SELECT, in a selected
            // mailbox, tells the client where the mailbox stands. Not while expunges are held
            // back: the client would take their MODSEQ as seen.
            if condStoreEnabled, let selected = self.selected, selected.pendingExpunges.isEmpty,
                !Self.isSelect(command.command), let highest = self.highestModSeq
            {
                responses.insert(
                    .untagged(.ok, .highestModSeq(highest), "CONDSTORE on"),
                    at: max(0, responses.count - 1)
                )
            }
            try await self.send(self.encode(responses), write)
            return .ok
        } catch {
            if error.status == .bye { throw CancellationError() }
            self.failures += 1
            var responses: [IMAPResponse] = []
            if let selected = self.selected, let state = try? await self.folderState(selected.name, account) {
                responses += self.update(state, expunges: Self.mayExpunge(command.command))
            }
            responses.append(.tagged(tag, error.status, error.code, error.text))
            try await write(self.encode(responses))
            return error.status
        }
    }

    /// What the mailbox commands throw: a tagged NO or BAD.
    struct IMAPFailure: Error {
        var status: IMAPStatus
        var code: IMAPResponseCode?
        var text: String

        static func no(_ code: IMAPResponseCode?, _ text: String) -> IMAPFailure {
            IMAPFailure(status: .no, code: code, text: text)
        }

        static func bad(_ text: String) -> IMAPFailure {
            IMAPFailure(status: .bad, code: nil, text: text)
        }

        /// The client went away while a response was being written.
        static let disconnected = IMAPFailure(status: .bye, code: nil, text: "connection lost")

        init(status: IMAPStatus, code: IMAPResponseCode?, text: String) {
            self.status = status
            self.code = code
            self.text = text
        }

        init(_ error: MailboxError) {
            switch error {
            case .nonexistent: self = .no(.nonexistent, error.description)
            case .alreadyExists: self = .no(.alreadyExists, error.description)
            case .invalidName, .cannot: self = .no(.cannot, error.description)
            case .limit: self = .no(.limit, error.description)
            case .storage(.insufficientStorage): self = .no(.limit, "the server's disk is full; try again later")
            case .storage: self = .no(.serverBug, "the mailbox could not be read or written; try again later")
            }
        }
    }

    /// Whether EXPUNGE responses may go out during this command (RFC 9051 §7.5.1).
    static func mayExpunge(_ command: IMAPCommand) -> Bool {
        switch command {
        case .fetch(_, _, let uid, _), .store(_, _, let uid), .search(_, let uid): return uid
        default: return true
        }
    }

    static func isSelect(_ command: IMAPCommand) -> Bool {
        switch command {
        case .select, .examine: return true
        default: return false
        }
    }

    private func run(
        _ command: TaggedCommand,
        account: MailAccount,
        write: Write
    ) async throws(IMAPFailure)
        -> [IMAPResponse]
    {
        let tag = command.tag
        switch command.command {
        case .noop, .check:
            let done = command.command == .check ? "CHECK done" : "NOOP done"
            return try await self.refreshed(account, expunges: true) + [.tagged(tag, .ok, nil, done)]
        case .select(let name, let options), .examine(let name, let options):
            let readOnly = if case .examine = command.command { true } else { false }
            return try await self.select(tag, name, options, readOnly: readOnly, account: account, write: write)
        case .create(let name):
            let folder = try self.storeName(name)
            try await self.call { () throws(MailboxError) in try account.create(folder) }
            // OBJECTID (RFC 8474 §4.1): CREATE's OK names the new mailbox's id.
            let id = try? await self.folderState(folder, account).mailboxID
            let code = self.session.offers("OBJECTID") ? id.map(IMAPResponseCode.mailboxID) : nil
            return try await self.refreshed(account, expunges: true) + [.tagged(tag, .ok, code, "CREATE done")]
        case .delete(let name):
            let folder = try self.storeName(name)
            if self.selected?.name == folder { throw .no(.inUse, "close the mailbox before deleting it") }
            try await self.call { () throws(MailboxError) in try account.delete(folder) }
            return try await self.done(tag, "DELETE done", account)
        case .rename(let from, let to):
            let source = try self.storeName(from)
            let target = try self.storeName(to)
            try await self.call { () throws(MailboxError) in try account.rename(source, to: target) }
            return try await self.done(tag, "RENAME done", account)
        case .subscribe(let name), .unsubscribe(let name):
            let folder = try self.storeName(name)
            let on = if case .subscribe = command.command { true } else { false }
            try await self.call { () throws(MailboxError) in try account.setSubscribed(folder, on) }
            return try await self.done(tag, on ? "SUBSCRIBE done" : "UNSUBSCRIBE done", account)
        case .list(let list):
            return try await self.list(list, account: account, lsub: false)
                + self.refreshed(account, expunges: true) + [.tagged(tag, .ok, nil, "LIST done")]
        case .lsub(let reference, let pattern):
            let list = IMAPListCommand(selection: [.subscribed], reference: reference, patterns: [pattern])
            return try await self.list(list, account: account, lsub: true)
                + self.refreshed(account, expunges: true) + [.tagged(tag, .ok, nil, "LSUB done")]
        case .status(let name, let items):
            let folder = try self.storeName(name)
            let state = try await self.folderState(folder, account)
            return [self.status(folder, state, items)] + (try await self.refreshed(account, expunges: true))
                + [.tagged(tag, .ok, nil, "STATUS done")]
        case .append(let append):
            let upload = self.upload
            self.upload = nil
            defer { upload?.abandon() }  // after a successful append, its file is gone already
            return try await self.append(tag, append, upload: upload, account: account)
        case .close, .unselect:
            guard let selected = self.selected else { throw .bad("no mailbox is selected") }
            if case .close = command.command, !selected.readOnly {
                _ = try await self.call { () throws(MailboxError) in try account.expunge(selected.name, uids: nil) }
            }
            self.selected = nil
            self.session.selected(nil)
            return [.tagged(tag, .ok, nil, command.command == .close ? "CLOSE done" : "UNSELECT done")]
        case .expunge, .uidExpunge:
            guard let selected = self.selected else { throw .bad("no mailbox is selected") }
            guard !selected.readOnly else { throw .no(.readOnly, "the mailbox was opened with EXAMINE") }
            var uids: [UInt32]?
            if case .uidExpunge(let set) = command.command { uids = try self.resolve(set, uid: true).map(\.uid) }
            let restricted = uids
            _ = try await self.call { () throws(MailboxError) in try account.expunge(selected.name, uids: restricted) }
            let responses = try await self.refreshed(account, expunges: true)
            // RFC 7162 §3.1.10 (CONDSTORE): where the mailbox stands once the expunges are told.
            let code = self.session.condStore ? self.highestModSeq.map(IMAPResponseCode.highestModSeq) : nil
            return responses + [.tagged(tag, .ok, code, "EXPUNGE done")]
        case .search(let search, let uid):
            return try await self.search(tag, search, uid: uid, account: account)
        case .fetch(let set, let items, let uid, let modifiers):
            return try await self.fetch(tag, set, items, uid: uid, modifiers, account: account, write: write)
        case .store(let set, let store, let uid):
            return try await self.store(tag, set, store, uid: uid, account: account)
        case .copy(let set, let name, let uid), .move(let set, let name, let uid):
            let move = if case .move = command.command { true } else { false }
            return try await self.copy(tag, set, to: name, uid: uid, move: move, account: account)
        case .getQuota(let root):
            guard root.isEmpty, let quota = try await self.quota(account) else {
                throw .no(.nonexistent, "no quota root \"\(root)\"; GETQUOTAROOT INBOX names it")
            }
            return [quota] + (try await self.refreshed(account, expunges: true)) + [
                .tagged(tag, .ok, nil, "GETQUOTA done")
            ]
        case .getQuotaRoot(let name):
            let folder = try self.storeName(name)
            _ = try await self.folderState(folder, account)  // a folder that exists
            let quota = try await self.quota(account)
            var responses: [IMAPResponse] = [
                .quotaRoot(mailbox: Self.displayName(folder), roots: quota == nil ? [] : [""])
            ]
            if let quota { responses.append(quota) }
            return responses + (try await self.refreshed(account, expunges: true))
                + [.tagged(tag, .ok, nil, "GETQUOTAROOT done")]
        case .capability, .logout, .id, .startTLS, .authenticate, .login, .enable, .namespace, .idle, .setQuota,
            .compress:
            // The session answers these itself; IDLE is the connection's.
            throw .bad("unexpected command")
        }
    }

    // MARK: - Helpers

    /// The flag list of each combination of system flags, made once.
    static let systemFlagLists: [[IMAPFlag]] = (0..<32).map { bits in
        MessageFlags(system: MessageFlags.System(rawValue: UInt8(bits))).names.map(IMAPFlag.init)
    }

    /// Runs a blocking call of the user's account on its threads, in its turn.
    func call<T: Sendable>(_ body: @escaping @Sendable () throws(MailboxError) -> T) async throws(IMAPFailure) -> T {
        do {
            return try await self.accounts.run(self.account, body)
        } catch {
            throw IMAPFailure(error)
        }
    }

    func folderState(_ name: String, _ account: MailAccount) async throws(IMAPFailure) -> FolderState {
        try await self.call { () throws(MailboxError) in try account.state(of: name) }
    }

    /// The client's mailbox name as the store spells it (modified UTF-7): a UTF-8 name is
    /// encoded; an IMAP4rev1 client's name must be valid modified UTF-7 already. After ENABLE
    /// UTF8=ACCEPT an ASCII name that is valid modified UTF-7 is still taken as such: clients
    /// (Python's imapclient) go on encoding names after enabling it, and a name typed with `&`
    /// is rarely valid modified UTF-7 by chance.
    func storeName(_ name: IMAPMailboxName) throws(IMAPFailure) -> String {
        if name.isInbox { return "INBOX" }
        let text: String
        let modifiedUTF7 = !name.bytes.contains(where: { $0 >= 0x80 }) && ModifiedUTF7.decode(name.bytes) != nil
        if name.bytes.contains(where: { $0 >= 0x80 }) || (self.session.utf8 && !modifiedUTF7) {
            guard let utf8 = String(validating: name.bytes, as: UTF8.self) else {
                throw .no(.cannot, "a mailbox name must be UTF-8")
            }
            text = ModifiedUTF7.encode(utf8)
        } else {
            guard ModifiedUTF7.decode(name.bytes) != nil else {
                throw .no(.cannot, "a mailbox name must be modified UTF-7 (RFC 3501 §5.1.3)")
            }
            text = String(decoding: name.bytes, as: UTF8.self)
        }
        do {
            return try MailAccount.canonicalName(text)
        } catch {
            throw IMAPFailure(error)
        }
    }

    /// A store name as responses carry it (UTF-8; the encoder writes modified UTF-7 for
    /// IMAP4rev1 clients).
    static func displayName(_ name: String) -> String {
        ModifiedUTF7.decode(Array(name.utf8)) ?? name
    }

    func resolve(_ set: IMAPSequenceSet, uid: Bool) throws(IMAPFailure) -> [(sequence: UInt32, uid: UInt32)] {
        guard let selected = self.selected else { throw .bad("no mailbox is selected") }
        do {
            return try selected.resolve(set, uid: uid)
        } catch {
            switch error {
            case .noSuchMessage(let number):
                throw .bad("no message has sequence number \(number) (there are \(selected.count))")
            }
        }
    }

    /// Takes in the selected mailbox's changes and says what the client must hear of them.
    func refreshed(_ account: MailAccount, expunges: Bool) async throws(IMAPFailure) -> [IMAPResponse] {
        guard self.selected != nil else { return [] }
        return try await self.snapshot(account, expunges: expunges).0
    }

    /// What a session in IDLE must hear: from the account's published state when its
    /// directories were looked at within `maxAge` nanoseconds (no trip to the account's
    /// threads), else after a look of its own. Either way the folder stays watched: mail
    /// delivered to it is taken in at once.
    func idleUpdates(_ account: MailAccount, checkedWithin maxAge: Int64) async throws(IMAPFailure) -> [IMAPResponse] {
        guard let selected = self.selected else { return [] }
        if let state = account.publishedState(of: selected.name, checkedWithin: maxAge) {
            return self.update(state, expunges: true)
        }
        let name = selected.name
        let state = try await self.call { () throws(MailboxError) in try account.state(of: name, watching: true) }
        return self.update(state, expunges: true)
    }

    func update(_ state: FolderState, expunges: Bool) -> [IMAPResponse] {
        guard var selected = self.selected, state.uidValidity == selected.uidValidity else { return [] }
        selected.condStore = self.session.condStore
        selected.qresync = self.session.qresync
        self.highestModSeq = state.highestModSeq
        let responses = selected.update(
            uidNext: state.uidNext,
            highestModSeq: state.highestModSeq,
            uids: state.uids,
            modSeqs: state.modSeqs,
            expunges: expunges
        ) { Self.flags(state.messages[$0].flags) }
        self.selected = selected
        return responses
    }

    static func flags(_ flags: MessageFlags) -> [IMAPFlag] {
        if flags.keywords.isEmpty { return Self.systemFlagLists[Int(flags.system.rawValue & 31)] }
        return flags.names.map(IMAPFlag.init)
    }

    // MARK: Quota

    /// The account's one quota root, `""` (RFC 9208 §5.1): its STORAGE in units of 1024 octets;
    /// nil when the account has no limit.
    func quota(_ account: MailAccount) async throws(IMAPFailure) -> IMAPResponse? {
        guard let limit = await self.service.settings(user: account.address).storageLimit else { return nil }
        let used = try await self.usage(account)
        return .quota(root: "", [IMAPQuotaResource("STORAGE", usage: (used.bytes + 1023) / 1024, limit: limit / 1024)])
    }

    func usage(_ account: MailAccount) async throws(IMAPFailure) -> StorageUsage {
        do {
            return try await self.accounts.usage(of: account.address)
        } catch {
            throw IMAPFailure(error)
        }
    }

    /// Refuses what would take the account over its quota (APPEND, COPY): `NO [OVERQUOTA]`.
    func checkQuota(_ account: MailAccount, adding size: UInt64) async throws(IMAPFailure) {
        guard let limit = await self.service.settings(user: account.address).storageLimit else { return }
        let used = try await self.usage(account).bytes
        if used > limit || size > limit - used {
            throw .no(
                .overQuota,
                "over quota: \(ByteCount.format(used)) of \(ByteCount.format(limit)) used; delete mail to make room"
            )
        }
    }

    private func done(_ tag: String, _ text: String, _ account: MailAccount) async throws(IMAPFailure) -> [IMAPResponse]
    {
        try await self.refreshed(account, expunges: true) + [.tagged(tag, .ok, nil, text)]
    }
}

/// The store's messages as the view compares them.
extension StoredMessage: IMAPMessageState {
    public var imapFlags: [IMAPFlag] { IMAPSessionDriver.flags(self.flags) }
}
