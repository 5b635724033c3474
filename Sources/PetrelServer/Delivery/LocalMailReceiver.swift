import Accounts
import Logging
import MailCore
import MailStore
import NIOCore
import SMTPCore
import SMTPServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives mail for local mailboxes: recipients are checked against the account directory at
/// RCPT TO, and messages are written to Maildirs through `MaildirStore` before the 250.
final class LocalMailReceiver: SMTPMailReceiver {
    let accounts: AccountStore
    let resolver: RecipientResolver
    let store: MaildirStore
    let hostname: String
    let ids: QueueIDGenerator
    let logger: Logger

    init(
        accounts: AccountStore,
        resolver: RecipientResolver,
        store: MaildirStore,
        hostname: String,
        ids: QueueIDGenerator,
        logger: Logger
    ) {
        self.accounts = accounts
        self.resolver = resolver
        self.store = store
        self.hostname = hostname
        self.ids = ids
        self.logger = logger
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
                // No client is trusted by its address; relaying needs authenticated submission.
                return .rejected(SMTPReply(554, EnhancedStatusCode(5, 7, 1), "\(path): Relay access denied"))
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
                tls: false,
                authenticated: false
            ),
            id: id,
            recipient: envelope.recipients.count == 1 ? envelope.recipients[0].forwardPath : nil,
            date: Self.now(),
            reversePath: envelope.reversePath
        )
        do {
            let file = try await self.store.createMessage(id: id, header: trace.rendered)
            return .success(
                LocalIncomingMessage(file: file, envelope: envelope, connection: connection, logger: self.logger)
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

final class LocalIncomingMessage: IncomingMessage {
    let file: MaildirMessage
    let envelope: Envelope
    let connection: ConnectionInfo
    let logger: Logger

    init(file: MaildirMessage, envelope: Envelope, connection: ConnectionInfo, logger: Logger) {
        self.file = file
        self.envelope = envelope
        self.connection = connection
        self.logger = logger
    }

    func append(_ content: ByteBuffer) async {
        await self.file.append(content)
    }

    func commit() async -> ServerSession.CommitOutcome {
        let mailboxes = self.envelope.mailboxes.map(\.description)
        do {
            _ = try await self.file.commit(to: mailboxes)
        } catch {
            self.logger.error(
                "message not stored",
                metadata: ["session": "\(self.connection.id)", "id": "\(self.file.id)", "error": "\(error)"]
            )
            return .failed(LocalMailReceiver.reply(for: error))
        }
        let size = await self.file.size
        self.logger.info(
            "message accepted",
            metadata: [
                "session": "\(self.connection.id)",
                "id": "\(self.file.id)",
                "client": "\(self.connection.remoteIP)",
                "from": "\(self.envelope.reversePath)",
                "to": "\(self.envelope.recipients.map { $0.forwardPath.description }.joined(separator: ","))",
                "mailboxes": "\(mailboxes.joined(separator: ","))",
                "size": "\(size)",
            ]
        )
        return .stored(id: self.file.id)
    }

    func discard() async {
        await self.file.discard()
    }
}
