import Accounts
import Logging
import MailCore
import MailStore
import NIOCore
import NIOPosix
import SMTPCore
import SMTPServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Petrel's side of the SMTP seam: recipients are checked against the account directory at RCPT
/// TO; authenticated users may relay, as themselves only; messages are written to Maildirs and to
/// the outbound queue before the 250.
final class MailReceiver: SMTPMailReceiver {
    let accounts: AccountStore
    let resolver: RecipientResolver
    let store: MessageStore
    let hostname: String
    let ids: QueueIDGenerator
    let failures: AuthenticationFailures
    let threadPool: NIOThreadPool
    let logger: Logger
    /// Per-process random bytes for SCRAM answers about users that do not exist.
    private let decoySecret: [UInt8]
    private let decoyHash: String

    init(
        accounts: AccountStore,
        resolver: RecipientResolver,
        store: MessageStore,
        hostname: String,
        ids: QueueIDGenerator,
        failures: AuthenticationFailures,
        threadPool: NIOThreadPool,
        logger: Logger
    ) throws {
        self.accounts = accounts
        self.resolver = resolver
        self.store = store
        self.hostname = hostname
        self.ids = ids
        self.failures = failures
        self.threadPool = threadPool
        self.logger = logger
        var generator = SystemRandomNumberGenerator()
        self.decoySecret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.decoyHash = try PasswordHasher.hash(String(decoding: self.decoySecret.map { $0 % 26 + 97 }, as: UTF8.self))
    }

    /// An address blocked for failed logins is turned away from the submission listeners; mail
    /// for our users from the same address over port 25 still gets in.
    func admit(connection: ConnectionInfo) async -> SMTPReply? {
        guard connection.listener != .smtp, self.failures.isBlocked(connection.remoteIP) else { return nil }
        return .tooManyAuthenticationFailures(hostname: self.hostname)
    }

    func beginAuthentication(mechanism: String, connection: ConnectionInfo) -> any AuthenticationExchange {
        var generator = SystemRandomNumberGenerator()
        let nonce = Base64.encode((0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return AccountAuthentication(
            sasl: SASLServer(
                // The session offers and accepts only SASLMechanism's names (PetrelServer.start).
                mechanism: SASLMechanism(rawValue: mechanism) ?? .plain,
                serverNonce: nonce,
                decoySecret: self.decoySecret
            ),
            accounts: self.accounts,
            failures: self.failures,
            threadPool: self.threadPool,
            connection: connection,
            hostname: self.hostname,
            decoyHash: self.decoyHash,
            logger: self.logger
        )
    }

    /// An authenticated user may send as their own address, a subaddress of it, or an alias that
    /// reaches them; never as `<>` (bounces are the server's to send) or as anyone else.
    func verifySender(
        _ path: ReversePath,
        user: String,
        connection: ConnectionInfo
    ) async
        -> ServerSession.SenderVerdict
    {
        guard let mailbox = path.mailbox, let owner = try? AccountAddress(validating: user) else {
            return .rejected(.senderNotOwned(path.description))
        }
        if case .mailboxes(let list) = try? await self.accounts.resolve(.mailbox(mailbox), with: self.resolver),
            list.contains(owner)
        {
            return .accepted
        }
        return .rejected(.senderNotOwned(path.description))
    }

    func verifyRecipient(
        _ path: ForwardPath,
        transaction: ServerSession.Transaction,
        connection: ConnectionInfo
    ) async -> ServerSession.RecipientVerdict {
        do {
            switch try await self.accounts.resolve(path, with: self.resolver) {
            case .mailboxes(let mailboxes):
                return .accepted(mailboxes.map(\.mailbox))
            case .unknownUser:
                return .rejected(
                    SMTPReply(550, EnhancedStatusCode(5, 1, 1), "\(path): Recipient address rejected: user unknown")
                )
            case .foreignDomain:
                // Only an authenticated user may relay; no client is trusted by its address.
                guard transaction.authenticatedUser != nil, case .mailbox(let mailbox) = path, mailbox.domain != nil
                else {
                    return .rejected(SMTPReply(554, EnhancedStatusCode(5, 7, 1), "\(path): Relay access denied"))
                }
                return .relay
            }
        } catch {
            self.logger.error(
                "recipient lookup failed",
                metadata: ["session": "\(connection.id)", "to": "\(path)", "error": "\(error)"]
            )
            return .rejected(SMTPReply(451, EnhancedStatusCode(4, 3, 0), "\(path): Temporary lookup failure"))
        }
    }

    func openMessage(
        _ transaction: ServerSession.Transaction,
        connection: ConnectionInfo
    ) async -> Result<any IncomingMessage, SMTPCommandError> {
        let id = self.ids.next()
        let envelope = transaction.envelope
        let trace = TraceHeaders(
            heloName: transaction.greeting.name,
            clientAddressLiteral: connection.remoteAddressLiteral,
            serverHostname: self.hostname,
            protocolKeyword: TraceHeaders.protocolKeyword(
                extended: transaction.greeting.extended,
                smtpUTF8: envelope.smtpUTF8,
                tls: transaction.tls != nil,
                authenticated: transaction.authenticatedUser != nil
            ),
            id: id,
            recipient: envelope.recipients.count == 1 ? envelope.recipients[0].forwardPath : nil,
            date: Self.now(),
            reversePath: envelope.reversePath,
            tls: transaction.tls?.description
        )
        let remote = envelope.remoteRecipients
        do {
            let file = try await self.store.createMessage(
                id: id,
                header: trace.rendered,
                local: !envelope.mailboxes.isEmpty,
                queued: !remote.isEmpty
            )
            let queueEntry =
                remote.isEmpty
                ? nil
                : QueueEntry(
                    id: id,
                    createdAt: Int64(time(nil)),
                    sender: envelope.reversePath.mailbox?.description ?? "",
                    recipients: remote.map(\.description),
                    smtpUTF8: envelope.smtpUTF8,
                    body: envelope.bodyType?.rawValue,
                    authenticatedUser: transaction.authenticatedUser
                )
            return .success(
                StoredMessage(
                    file: file,
                    envelope: envelope,
                    queueEntry: queueEntry,
                    connection: connection,
                    logger: self.logger
                )
            )
        } catch {
            self.logger.error("cannot store message", metadata: ["session": "\(connection.id)", "error": "\(error)"])
            return .failure(SMTPCommandError(Self.reply(for: error)))
        }
    }

    static func reply(for error: StoreError) -> SMTPReply {
        switch error {
        case .insufficientStorage: return .insufficientStorage
        case .io, .invalidMailboxName: return .localError
        }
    }

    /// The current time with the local UTC offset, for the Received header.
    static func now() -> MessageDate {
        var seconds = time(nil)
        var local = tm()
        localtime_r(&seconds, &local)
        return MessageDate(secondsSince1970: Int64(seconds), utcOffsetSeconds: Int(local.tm_gmtoff))
    }
}

/// A message on its way into the Maildirs and the queue.
final class StoredMessage: IncomingMessage {
    let file: IncomingMessageFile
    let envelope: Envelope
    let queueEntry: QueueEntry?
    let connection: ConnectionInfo
    let logger: Logger

    init(
        file: IncomingMessageFile,
        envelope: Envelope,
        queueEntry: QueueEntry?,
        connection: ConnectionInfo,
        logger: Logger
    ) {
        self.file = file
        self.envelope = envelope
        self.queueEntry = queueEntry
        self.connection = connection
        self.logger = logger
    }

    func append(_ content: ByteBuffer) async {
        await self.file.append(content)
    }

    func commit() async -> ServerSession.CommitOutcome {
        let mailboxes = self.envelope.mailboxes.map(\.description)
        do {
            try await self.file.commit(to: mailboxes, queueEntry: self.queueEntry)
        } catch {
            self.logger.error(
                "message not stored",
                metadata: ["session": "\(self.connection.id)", "id": "\(self.file.id)", "error": "\(error)"]
            )
            return .failed(MailReceiver.reply(for: error))
        }
        var metadata: Logger.Metadata = [
            "session": "\(self.connection.id)",
            "id": "\(self.file.id)",
            "client": "\(self.connection.remoteIP)",
            "from": "\(self.envelope.reversePath)",
            "to": "\(self.envelope.recipients.map { $0.forwardPath.description }.joined(separator: ","))",
            "size": "\(await self.file.size)",
        ]
        if !mailboxes.isEmpty { metadata["mailboxes"] = "\(mailboxes.joined(separator: ","))" }
        if let queueEntry { metadata["queued"] = "\(queueEntry.recipients.map(\.address).joined(separator: ","))" }
        self.logger.info("message accepted", metadata: metadata)
        return .stored(id: self.file.id)
    }

    func discard() async {
        await self.file.discard()
    }
}
