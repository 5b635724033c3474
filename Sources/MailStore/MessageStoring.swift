import NIOCore

/// Where the inbound pipeline puts what it receives: the seam a storage engine implements.
/// `MessageStore` is the embedded engine (spool files in `incoming/`, hard links into Maildirs,
/// queue files, one group commit for all); a PostgreSQL engine will be another, and the intake
/// tests use one in memory. MailIntake reaches the mailboxes and the queue only through this.
///
/// The promise is the engine's: when `commit` returns, the message is durable in every mailbox
/// and in the queue, and survives a crash or power loss; when it throws, nothing of it was
/// promised and nothing of it is left where a reader would find it.
public protocol MessageStoring: Sendable {
    /// What the engine writes a message with.
    associatedtype Writer: MessageWriting
    /// Starts a message. Nothing need touch the disk yet.
    /// - Parameters:
    ///   - local: it has local mailboxes.
    ///   - queued: it has recipients at other servers.
    func beginMessage(id: String, local: Bool, queued: Bool) -> Writer
    /// What a local mailbox holds now, for its quota.
    func usage(of mailbox: String) async throws(StoreError) -> StorageUsage
}

/// One message being received, written as it arrives. Used by one connection task at a time.
public protocol MessageWriting: Actor {
    nonisolated var id: String { get }
    /// Octets so far (CRLF line ends), the committed header included once committed.
    var size: Int { get }
    /// Adds content (CRLF line endings, as received). A storage failure is remembered and
    /// reported by `commit`.
    func append(_ content: ByteBuffer) async
    /// Makes the message durable: delivered into every mailbox (into `folder` instead of the
    /// inbox when one is given), and queued with `queueEntry` for the remote recipients.
    /// - Parameters:
    ///   - header: header fields to put before the content (CRLF line ends).
    ///   - mailboxes: canonical mailbox addresses, each named once (none when not local).
    func commit(
        header: String,
        to mailboxes: [String],
        folder: String?,
        queueEntry: QueueEntry?
    ) async throws(StoreError)
    /// Drops the message. Safe at any time, also after a failed commit.
    func discard() async
}

extension MessageStore: MessageStoring {}

extension IncomingMessageFile: MessageWriting {}
