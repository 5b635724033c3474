import MailCore
import NIOConcurrencyHelpers
import NIOPosix
import PetrelSystem

/// Tells the IMAP sessions of an account that its index changed (another session's APPEND,
/// STORE, EXPUNGE; a delivery or another program's change once taken in): each session then
/// compares its view with the state the account published (`MailAccount.publishedState`) and tells
/// its client.
///
/// Deliveries write the Maildir, not the index: `delivered` hands them to who takes them in
/// (`MailAccounts`: one look at the directories per account however many sessions wait), and
/// that look's commit is what wakes the sessions. Changes made by other programs are not
/// signalled; sessions in IDLE look for them every few seconds.
public final class MailboxChanges: Sendable {
    private struct Listeners {
        var next: UInt64 = 0
        var byAddress: [String: [UInt64: AsyncStream<Void>.Continuation]] = [:]
    }

    private let listeners = NIOLockedValueBox(Listeners())
    private let takers = NIOLockedValueBox<[ObjectIdentifier: @Sendable (String) -> Void]>([:])

    public init() {}

    /// A stream that yields after each change to the account (changes coalesce while unread);
    /// `cancel` ends it.
    public func listen(_ address: String) -> (stream: AsyncStream<Void>, cancel: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = self.listeners.withLockedValue { listeners in
            listeners.next += 1
            listeners.byAddress[address, default: [:]][listeners.next] = continuation
            return listeners.next
        }
        let cancel: @Sendable () -> Void = { [listeners] in
            let removed = listeners.withLockedValue { listeners -> AsyncStream<Void>.Continuation? in
                let removed = listeners.byAddress[address]?.removeValue(forKey: id)
                if listeners.byAddress[address]?.isEmpty == true { listeners.byAddress[address] = nil }
                return removed
            }
            removed?.finish()
        }
        return (stream, cancel)
    }

    /// The account's index changed: wakes its sessions.
    public func changed(_ address: String) {
        let continuations = self.listeners.withLockedValue { Array(($0.byAddress[address] ?? [:]).values) }
        for continuation in continuations { continuation.yield() }
    }

    /// Mail was put into the address's Maildir: taken in by whoever watches it, if anyone.
    public func delivered(_ address: String) {
        guard self.isListened(address) else { return }
        for take in self.takers.withLockedValue({ Array($0.values) }) { take(address) }
    }

    /// Whether a session listens for the account's changes.
    public func isListened(_ address: String) -> Bool {
        self.listeners.withLockedValue { $0.byAddress[address] != nil }
    }

    func takeDeliveries(_ owner: ObjectIdentifier, _ take: (@Sendable (String) -> Void)?) {
        self.takers.withLockedValue { $0[owner] = take }
    }

    /// Sessions listening, for the tests and metrics.
    public var count: Int { self.listeners.withLockedValue { $0.byAddress.values.reduce(0) { $0 + $1.count } } }
}

/// The accounts' mailboxes as IMAP uses them: opens each account once (`MailAccount`, shared by
/// all its sessions) and runs its blocking calls on threads of their own, one call per account
/// at a time. An account's calls wait their turn without holding a thread (`AsyncSemaphore`),
/// so one user's twenty sessions cannot take every thread from the others; and the threads are
/// not those that store received mail, so IMAP cannot slow deliveries.
public final class MailAccounts: Sendable {
    let maildirs: MaildirStore
    let threadPool: NIOThreadPool
    /// Where APPEND's messages stream to: `incoming/`, on the Maildirs' file system.
    let uploads: String
    private let uploadCounter = NIOLockedValueBox(0)
    /// IMAP name → special-use attribute, made in every account at its first use.
    public let specialUse: [String: String]
    private let open = NIOLockedValueBox<[String: MailAccount]>([:])
    /// An account is opened once at a time: two first logins of a user make one `MailAccount`
    /// (and a slow open, an index rebuilt, holds up no one else's).
    private let opening = SemaphoreTable<String>(permits: 1)
    /// Whether this owns its thread pool (and shuts it down).
    private let ownsThreadPool: Bool

    public var changes: MailboxChanges { self.maildirs.changes }

    /// - Parameter junkFolder: the Maildir++ folder quarantined mail goes to (".Junk"), which
    ///   IMAP shows as `\Junk`.
    /// - Parameter threads: how many account calls run at once (each blocks on files and SQLite).
    public convenience init(store: MessageStore, junkFolder: String = ".Junk", threads: Int = 4) {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        self.init(
            maildirs: store.maildirs,
            threadPool: pool,
            uploads: store.incomingDirectory,
            junkFolder: junkFolder,
            ownsThreadPool: true
        )
    }

    init(
        maildirs: MaildirStore,
        threadPool: NIOThreadPool,
        uploads: String,
        junkFolder: String = ".Junk",
        ownsThreadPool: Bool = false
    ) {
        self.maildirs = maildirs
        self.threadPool = threadPool
        self.uploads = uploads
        self.ownsThreadPool = ownsThreadPool
        var specialUse = ["Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Archive": "\\Archive"]
        specialUse[String(junkFolder.dropFirst())] = "\\Junk"
        self.specialUse = specialUse
        maildirs.changes.takeDeliveries(ObjectIdentifier(self)) { [weak self] address in self?.takeIn(address) }
    }

    deinit {
        self.maildirs.changes.takeDeliveries(ObjectIdentifier(self), nil)
    }

    /// Takes mail just delivered to an open account into its index: one look at the folders
    /// its sessions watch (`MailAccount.takeIn`), whose commit wakes them. Deliveries while a
    /// look is under way make one more after it, not one each. A look that could not see a
    /// change made in the same clock tick as the directories' last one looks again once the
    /// tick is over.
    func takeIn(_ address: String) {
        guard let account = self.open.withLockedValue({ $0[address] }), account.takingIn.begin() else { return }
        Task {
            while true {
                let due: Int64?
                do throws(MailboxError) { due = try await self.run(account) { account.takeIn() } } catch { due = nil }
                // A change in the last look's clock tick may be hidden until the tick is over (a
                // second at most; a directory time in the future is the sessions' polls' to
                // watch, not a reason to wait here).
                if let due, case let wait = due - MailAccount.now(), wait <= 1_000_000_000 {
                    try? await Task.sleep(for: .nanoseconds(max(0, wait)))
                    continue
                }
                if !account.takingIn.next() { break }
            }
        }
    }

    /// The account's mailboxes, opened (and its special-use folders made) on first use.
    public func account(_ address: String) async throws(MailboxError) -> MailAccount {
        if let account = self.open.withLockedValue({ $0[address] }) { return account }
        await self.opening.acquire(address)
        let result: Result<MailAccount, MailboxError>
        if let account = self.open.withLockedValue({ $0[address] }) {
            result = .success(account)
        } else {
            do throws(MailboxError) {
                let opened = try await self.run(nil) { () throws(MailboxError) -> MailAccount in
                    do throws(StoreError) {
                        return try MailAccount(address: address, maildirs: self.maildirs, specialUse: self.specialUse)
                    } catch {
                        throw .storage(error)
                    }
                }
                self.open.withLockedValue { $0[address] = opened }
                result = .success(opened)
            } catch {
                result = .failure(error)
            }
        }
        await self.opening.release(address)
        return try result.get()
    }

    /// What an account's Maildir holds, for its quota.
    public func usage(of address: String) async throws(MailboxError) -> StorageUsage {
        let maildirs = self.maildirs
        return try await self.run(nil) { () throws(MailboxError) -> StorageUsage in
            do throws(StoreError) { return try maildirs.usage(of: address) } catch { throw .storage(error) }
        }
    }

    /// A file for an APPEND's message to stream into.
    public func beginUpload() async throws(MailboxError) -> AppendUpload {
        let number = self.uploadCounter.withLockedValue { counter in
            counter += 1
            return counter
        }
        let path = self.uploads + "/imap-append.\(getpid()).\(number)"
        let pool = self.threadPool
        return try await self.run(nil) { () throws(MailboxError) -> AppendUpload in
            do throws(StoreError) { return try AppendUpload(path: path, threadPool: pool) } catch {
                throw .storage(error)
            }
        }
    }

    /// Runs a blocking call of an account's on the threads, after the account's calls before it.
    public func run<T: Sendable>(
        _ account: MailAccount?,
        _ body: @escaping @Sendable () throws(MailboxError) -> T
    ) async throws(MailboxError) -> T {
        await account?.turn.acquire()
        let result: Result<T, MailboxError>
        do {
            result = try await self.threadPool.runIfActive {
                do throws(MailboxError) { return .success(try body()) } catch { return .failure(error) }
            }
        } catch {
            result = .failure(.storage(.io(operation: "run", path: self.maildirs.mailRoot, errno: ECANCELED)))
        }
        await account?.turn.release()
        return try result.get()
    }

    public func shutdown() async {
        if self.ownsThreadPool { try? await self.threadPool.shutdownGracefully() }
    }
}
