import Accounts
import Logging
import MailAuth
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PetrelConfiguration
import PetrelSystem
import SMTPCore

/// Petrel's side of the SMTP seam: recipients are checked against the account directory at RCPT
/// TO; authenticated users may relay, as themselves only; messages are written to Maildirs and to
/// the outbound queue before the 250.
public final class MailReceiver: SMTPMailReceiver {
    let accounts: any AccountDirectory
    let resolver: RecipientResolver
    /// Where messages go: the Maildirs and the queue, through the storage seam.
    let store: any MessageStoring
    let hostname: String
    let ids: QueueIDGenerator
    /// Told the id of each message queued for other servers.
    let queued: @Sendable (String) -> Void
    let failures: LoginFailures
    let checks: PasswordChecks
    let inbound: InboundAuthentication
    /// Mailbox quotas (`[quota]`, and each mailbox's own).
    let quota: Configuration.Quota
    let metrics: IntakeMetrics
    let logger: Logger
    /// The stored secret SCRAM answers about users that do not exist are derived from: the same
    /// after a restart, or a changed salt would tell that the user is not real.
    private let decoySecret: [UInt8]
    /// A hash of a random password, for PLAIN and LOGIN with an unknown user: same cost.
    private let decoyHash: String

    public init(
        accounts: any AccountDirectory,
        resolver: RecipientResolver,
        store: any MessageStoring,
        hostname: String,
        ids: QueueIDGenerator,
        queued: @escaping @Sendable (String) -> Void,
        failures: LoginFailures,
        checks: PasswordChecks,
        inbound: InboundAuthentication,
        quota: Configuration.Quota = Configuration.Quota(),
        metrics: IntakeMetrics,
        logger: Logger
    ) throws {
        self.metrics = metrics
        self.quota = quota
        self.accounts = accounts
        self.resolver = resolver
        self.store = store
        self.hostname = hostname
        self.ids = ids
        self.queued = queued
        self.failures = failures
        self.checks = checks
        self.inbound = inbound
        self.logger = logger
        self.decoySecret = try accounts.secret(named: "scram-decoy", length: 32)
        var generator = SystemRandomNumberGenerator()
        let password = (0..<24).map { _ in UInt8.random(in: 97...122, using: &generator) }
        self.decoyHash = try PasswordHasher.hash(String(decoding: password, as: UTF8.self))
    }

    /// An address blocked for failed logins is turned away from the submission listeners; mail
    /// for our users from the same address over port 25 still gets in.
    public func admit(connection: ConnectionInfo) async -> SMTPReply? {
        self.metrics.connection(listener: connection.listener.rawValue)
        guard connection.listener != .smtp, self.failures.isBlocked(connection.remoteIP) else { return nil }
        return .tooManyAuthenticationFailures(hostname: self.hostname)
    }

    public func beginAuthentication(mechanism: String, connection: ConnectionInfo) -> any AuthenticationExchange {
        var generator = SystemRandomNumberGenerator()
        let nonce = Base64.encode((0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return AccountAuthentication(
            sasl: SASLServer(
                // The session offers and accepts only SASLMechanism's names (PetrelServer.bindListeners).
                mechanism: SASLMechanism(rawValue: mechanism) ?? .plain,
                serverNonce: nonce,
                decoySecret: self.decoySecret
            ),
            accounts: self.accounts,
            failures: self.failures,
            checks: self.checks,
            connection: connection,
            hostname: self.hostname,
            decoyHash: self.decoyHash,
            logger: self.logger
        )
    }

    /// An authenticated user may send as their own address, a subaddress of it, an alias that
    /// reaches them, or one of their sender addresses (`petrel user sender`); never as `<>`
    /// (bounces are the server's to send) or as anyone else.
    public func verifySender(
        _ path: ReversePath,
        user: String,
        connection: ConnectionInfo
    ) async
        -> ServerSession.SenderVerdict
    {
        guard let mailbox = path.mailbox, let owner = try? AccountAddress(validating: user),
            let address = AccountAddress(mailbox), await self.may(owner, sendAs: address)
        else {
            return .rejected(.senderNotOwned(path.description))
        }
        return .accepted
    }

    func may(_ user: AccountAddress, sendAs address: AccountAddress) async -> Bool {
        (try? await self.accounts.may(user, sendAs: address, with: self.resolver)) ?? false
    }

    public func verifyRecipient(
        _ path: ForwardPath,
        transaction: ServerSession.Transaction,
        connection: ConnectionInfo
    ) async -> ServerSession.RecipientVerdict {
        do {
            switch try await self.accounts.resolve(path, with: self.resolver) {
            case .mailboxes(let mailboxes):
                // One full mailbox of an alias's several does not hold up the others: the quota
                // is soft for it (one message over), as it is for a message without SIZE=.
                for mailbox in mailboxes where mailboxes.count == 1 {
                    if try await self.isFull(mailbox, adding: transaction.envelope.declaredSize ?? 0) {
                        self.metrics.recipientRefused(reason: "mailbox_full")
                        self.logger.info(
                            "mailbox full",
                            metadata: ["session": "\(connection.id)", "to": "\(path)", "mailbox": "\(mailbox)"]
                        )
                        return .rejected(.mailboxFull(path.description))
                    }
                }
                return .accepted(mailboxes.map(\.mailbox))
            case .unknownUser:
                self.metrics.recipientRefused(reason: "unknown_user")
                return .rejected(.unknownRecipient(path.description))
            case .foreignDomain:
                // Only an authenticated user may relay; no client is trusted by its address.
                guard transaction.authenticatedUser != nil, case .mailbox(let mailbox) = path, mailbox.domain != nil
                else {
                    self.metrics.recipientRefused(reason: "relay_denied")
                    return .rejected(.relayDenied(path.description))
                }
                return .relay
            }
        } catch {
            self.logger.error(
                "recipient lookup failed",
                metadata: ["session": "\(connection.id)", "to": "\(path)", "error": "\(error)"]
            )
            return .rejected(.recipientLookupFailed(path.description))
        }
    }

    /// Whether a mailbox is at its quota, or would be over it with `size` more octets (SIZE=,
    /// when the client declared one). A message that comes without SIZE= and takes a mailbox
    /// over is taken: the quota is soft by at most one message, never a reason to lose one.
    func isFull(_ mailbox: AccountAddress, adding size: UInt64) async throws -> Bool {
        guard let limit = self.quota.limit(own: try await self.accounts.settings(for: mailbox)?.storageQuota) else {
            return false
        }
        let used = try await self.store.usage(of: mailbox.description).bytes
        return used >= limit || size > limit - used
    }

    public func openMessage(
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
        // Mail from other servers is checked; a logged-in user's is theirs to vouch for.
        let verify =
            self.inbound.policy.verify && transaction.authenticatedUser == nil && connection.listener == .smtp
        let heloIdentity = envelope.reversePath.mailbox == nil
        let timestamp = Int(time(nil))
        let spf =
            verify
            ? self.inbound.startSPF(
                client: IPAddress(connection.remoteIP),
                mailFrom: envelope.reversePath.mailbox?.description ?? "",
                helo: transaction.greeting.name,
                timestamp: timestamp
            ) : nil
        let file = self.store.beginMessage(id: id, local: !envelope.mailboxes.isEmpty, queued: !remote.isEmpty)
        let queueEntry =
            remote.isEmpty
            ? nil
            : QueueEntry(
                id: id,
                createdAt: Int64(time(nil)),
                sender: envelope.reversePath,
                recipients: remote,
                smtpUTF8: envelope.smtpUTF8,
                body: envelope.bodyType?.rawValue,
                authenticatedUser: transaction.authenticatedUser
            )
        return .success(
            MessageBeingReceived(
                file: file,
                envelope: envelope,
                queueEntry: queueEntry,
                trace: trace,
                inbound: self.inbound,
                verification: spf.map { .init(spf: $0, heloIdentity: heloIdentity) },
                submitter: transaction.authenticatedUser.flatMap { try? AccountAddress(validating: $0) }.map { user in
                    MessageBeingReceived.Submitter(
                        user: user,
                        maySendAs: { [self] in await self.may(user, sendAs: $0) }
                    )
                },
                hostname: self.hostname,
                scanner: MessageScanner(now: timestamp, dkim: verify),
                queued: self.queued,
                metrics: self.metrics,
                connection: connection,
                logger: self.logger
            )
        )
    }

    /// The current time with the local UTC offset, for the Received header.
    static func now() -> MessageDate {
        var seconds = time(nil)
        var local = tm()
        localtime_r(&seconds, &local)
        return MessageDate(secondsSince1970: Int64(seconds), utcOffsetSeconds: Int(local.tm_gmtoff))
    }
}
