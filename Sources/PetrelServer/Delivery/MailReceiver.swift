import Accounts
import Logging
import MailAuth
import MailCore
import MailStore
import NIOConcurrencyHelpers
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
    /// Told the id of each message queued for other servers.
    let queued: @Sendable (String) -> Void
    let failures: AuthenticationFailures
    let checks: PasswordChecks
    let authentication: InboundAuthentication
    let metrics: ServerMetrics
    let logger: Logger
    /// The stored secret SCRAM answers about users that do not exist are derived from: the same
    /// after a restart, or a changed salt would tell that the user is not real.
    private let decoySecret: [UInt8]
    /// A hash of a random password, for PLAIN and LOGIN with an unknown user: same cost.
    private let decoyHash: String

    init(
        accounts: AccountStore,
        resolver: RecipientResolver,
        store: MessageStore,
        hostname: String,
        ids: QueueIDGenerator,
        queued: @escaping @Sendable (String) -> Void,
        failures: AuthenticationFailures,
        checks: PasswordChecks,
        authentication: InboundAuthentication,
        metrics: ServerMetrics,
        logger: Logger
    ) throws {
        self.metrics = metrics
        self.accounts = accounts
        self.resolver = resolver
        self.store = store
        self.hostname = hostname
        self.ids = ids
        self.queued = queued
        self.failures = failures
        self.checks = checks
        self.authentication = authentication
        self.logger = logger
        self.decoySecret = try accounts.secret(named: "scram-decoy")
        var generator = SystemRandomNumberGenerator()
        let password = (0..<24).map { _ in UInt8.random(in: 97...122, using: &generator) }
        self.decoyHash = try PasswordHasher.hash(String(decoding: password, as: UTF8.self))
    }

    /// An address blocked for failed logins is turned away from the submission listeners; mail
    /// for our users from the same address over port 25 still gets in.
    func admit(connection: ConnectionInfo) async -> SMTPReply? {
        self.metrics.connection(listener: connection.listener.rawValue)
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
    func verifySender(
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
                self.metrics.recipientRefused(reason: "unknown_user")
                return .rejected(
                    SMTPReply(550, EnhancedStatusCode(5, 1, 1), "\(path): Recipient address rejected: user unknown")
                )
            case .foreignDomain:
                // Only an authenticated user may relay; no client is trusted by its address.
                guard transaction.authenticatedUser != nil, case .mailbox(let mailbox) = path, mailbox.domain != nil
                else {
                    self.metrics.recipientRefused(reason: "relay_denied")
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
        // Mail from other servers is checked; a logged-in user's is theirs to vouch for.
        let verify =
            self.authentication.policy.verify && transaction.authenticatedUser == nil && connection.listener == .smtp
        let heloIdentity = envelope.reversePath.mailbox == nil
        let timestamp = Int(time(nil))
        let spf =
            verify
            ? self.authentication.startSPF(
                client: IPAddress(connection.remoteIP),
                mailFrom: envelope.reversePath.mailbox?.description ?? "",
                helo: transaction.greeting.name,
                timestamp: timestamp
            ) : nil
        let file = self.store.createMessage(id: id, local: !envelope.mailboxes.isEmpty, queued: !remote.isEmpty)
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
                trace: trace,
                authentication: self.authentication,
                verification: spf.map { .init(spf: $0, heloIdentity: heloIdentity) },
                submission: transaction.authenticatedUser.flatMap { try? AccountAddress(validating: $0) }.map { user in
                    StoredMessage.Submission(
                        user: user,
                        maySendAs: { [self] in await self.may(user, sendAs: $0) },
                        hostname: self.hostname
                    )
                },
                scanner: MessageScanner(now: timestamp, dkim: verify),
                queued: self.queued,
                metrics: self.metrics,
                connection: connection,
                logger: self.logger
            )
        )
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

/// A message on its way into the Maildirs and the queue. Its header section is held (by the
/// scanner, once) until it is complete, so that Authentication-Results fields claiming to be ours
/// can be dropped; the body streams to disk (and through the DKIM body hashes) as it comes.
final class StoredMessage: IncomingMessage {
    struct Verification: Sendable {
        var spf: Task<SPFVerdict?, Never>
        var heloIdentity: Bool
    }

    /// A logged-in user's message (submission), with what the user may send as.
    struct Submission: Sendable {
        var user: AccountAddress
        var maySendAs: @Sendable (AccountAddress) async -> Bool
        var hostname: String
    }

    struct Reading {
        var scanner: MessageScanner
        var headerWritten = false
    }

    let file: IncomingMessageFile
    let envelope: Envelope
    let queueEntry: QueueEntry?
    /// Return-Path and Received.
    let trace: TraceHeaders
    let authentication: InboundAuthentication
    /// nil when the message is not checked (a logged-in user's).
    let verification: Verification?
    /// nil for mail from other servers.
    let submission: Submission?
    let queued: @Sendable (String) -> Void
    let metrics: ServerMetrics
    let connection: ConnectionInfo
    let logger: Logger
    private let reading: NIOLockedValueBox<Reading>

    init(
        file: IncomingMessageFile,
        envelope: Envelope,
        queueEntry: QueueEntry?,
        trace: TraceHeaders,
        authentication: InboundAuthentication,
        verification: Verification?,
        submission: Submission?,
        scanner: MessageScanner,
        queued: @escaping @Sendable (String) -> Void,
        metrics: ServerMetrics,
        connection: ConnectionInfo,
        logger: Logger
    ) {
        self.queued = queued
        self.metrics = metrics
        self.file = file
        self.envelope = envelope
        self.queueEntry = queueEntry
        self.trace = trace
        self.authentication = authentication
        self.verification = verification
        self.submission = submission
        self.reading = NIOLockedValueBox(Reading(scanner: scanner))
        self.connection = connection
        self.logger = logger
    }

    func append(_ content: ByteBuffer) async {
        let ready: ByteBuffer? = self.reading.withLockedValue { reading in
            if reading.headerWritten {
                reading.scanner.append(content.readableBytesView)
                return content
            }
            guard let end = reading.scanner.append(content.readableBytesView), let header = reading.scanner.header
            else {
                return nil  // still in the header section (or past its limit: refused at the end)
            }
            reading.headerWritten = true
            var rest = ByteBuffer(bytes: end.carried)
            var tail = content.getSlice(
                at: content.readerIndex + end.offset,
                length: content.readableBytes - end.offset
            )!
            rest.writeBuffer(&tail)
            return self.filtered(header, rest: rest)
        }
        if let ready { await self.file.append(ready) }
    }

    /// The header section without forged Authentication-Results fields, then what followed it
    /// (the empty line and the body).
    private func filtered(_ header: HeaderSection, rest: ByteBuffer?) -> ByteBuffer {
        var output = ByteBuffer()
        for field in header.fields where !self.authentication.isForgedResults(field) {
            output.writeBytes(field.raw)
        }
        if var rest { output.writeBuffer(&rest) }
        return output
    }

    func commit() async -> ServerSession.CommitOutcome {
        typealias Finished = (scanned: MessageScanner.Scanned, tooLarge: Bool, last: ByteBuffer?)
        let (scanned, tooLarge, last): Finished = self.reading.withLockedValue { reading in
            let tooLarge = reading.scanner.headerTooLarge
            let scanned = reading.scanner.finish()
            var last: ByteBuffer?
            if !reading.headerWritten, !tooLarge {
                // No empty line: the whole message was header.
                reading.headerWritten = true
                last = self.filtered(scanned.header ?? HeaderSection(fields: []), rest: nil)
            }
            return (scanned, tooLarge, last)
        }
        if tooLarge {
            return await self.refuse(
                SMTPReply(552, EnhancedStatusCode(5, 3, 4), "Message header section too large"),
                reason: "header_too_large"
            )
        }
        let header = scanned.header ?? HeaderSection(fields: [])
        var added = ""
        if let submission = self.submission {
            switch await Self.completeSubmission(header, malformedLine: scanned.malformedLine, submission) {
            case .success(let fields): added = fields
            case .failure(let refusal): return await self.refuse(refusal.reply, reason: refusal.reason)
            }
        } else if self.connection.listener == .smtp,
            let problem = AuthorFields.problem(header: header, malformedLine: scanned.malformedLine)
        {
            return await self.refuse(InboundAuthentication.refusal(for: problem), reason: "author_fields")
        }
        if let last { await self.file.append(last) }
        var outcome: InboundAuthentication.Outcome?
        if let verification = self.verification {
            let spf = await verification.spf.value
            outcome = await self.authentication.evaluate(
                spf: spf,
                heloIdentity: verification.heloIdentity,
                message: scanned
            )
        }
        if let outcome {
            if let spf = outcome.results.spf {
                self.metrics.authentication(method: "spf", result: spf.verdict.result.rawValue)
            }
            for dkim in outcome.results.dkim {
                self.metrics.authentication(method: "dkim", result: dkim.result.rawValue)
            }
            if outcome.results.dkim.isEmpty { self.metrics.authentication(method: "dkim", result: "none") }
            if let dmarc = outcome.results.dmarc {
                self.metrics.authentication(method: "dmarc", result: dmarc.result.rawValue)
            }
        }
        if let refusal = outcome?.refusal {
            return await self.refuse(
                refusal,
                reason: "\(refusal.code)_\(refusal.enhancedCode?.description ?? "")",
                auth: outcome?.summary
            )
        }
        let mailboxes = self.envelope.mailboxes.map(\.description)
        let folder = mailboxes.isEmpty ? nil : outcome?.folder
        let started = ContinuousClock.now
        do {
            try await self.file.commit(
                // Return-Path on top (RFC 5321 §4.4), then our verdicts, then how it came, then
                // what the submission server completed (RFC 6409 §8).
                header: self.trace.returnPath + (outcome?.results.rendered ?? "") + self.trace.received + added,
                to: mailboxes,
                folder: folder,
                queueEntry: self.queueEntry
            )
        } catch {
            self.logger.error(
                "message not stored",
                metadata: ["session": "\(self.connection.id)", "id": "\(self.file.id)", "error": "\(error)"]
            )
            self.metrics.message("refused", reason: "store_error")
            return .failed(MailReceiver.reply(for: error))
        }
        self.metrics.storeCommit(ContinuousClock.now - started)
        self.metrics.message("accepted", reason: folder == nil ? "inbox" : "junk")
        var metadata: Logger.Metadata = [
            "session": "\(self.connection.id)",
            "id": "\(self.file.id)",
            "client": "\(self.connection.remoteIP)",
            "from": "\(self.envelope.reversePath)",
            "to": "\(self.envelope.recipients.map { $0.forwardPath.description }.joined(separator: ","))",
            "size": "\(await self.file.size)",
        ]
        if !mailboxes.isEmpty { metadata["mailboxes"] = "\(mailboxes.joined(separator: ","))" }
        if let folder { metadata["folder"] = "\(folder)" }
        if let outcome { metadata["auth"] = "\(outcome.summary)" }
        if let queueEntry { metadata["queued"] = "\(queueEntry.recipients.map(\.address).joined(separator: ","))" }
        self.logger.info("message accepted", metadata: metadata)
        if self.queueEntry != nil { self.queued(self.file.id) }
        return .stored(id: self.file.id)
    }

    /// Drops the message and answers `reply`, with the log line and metric of a refusal.
    private func refuse(_ reply: SMTPReply, reason: String, auth: String? = nil) async -> ServerSession.CommitOutcome {
        self.verification?.spf.cancel()
        await self.file.discard()
        self.metrics.message("refused", reason: reason)
        var metadata: Logger.Metadata = [
            "session": "\(self.connection.id)",
            "id": "\(self.file.id)",
            "client": "\(self.connection.remoteIP)",
            "from": "\(self.envelope.reversePath)",
            "reply": "\(reply.code) \(reply.enhancedCode.map { "\($0) " } ?? "")\(reply.lines.joined(separator: " "))",
        ]
        if let auth { metadata["auth"] = "\(auth)" }
        if let user = self.submission?.user { metadata["user"] = "\(user)" }
        self.logger.info("message refused", metadata: metadata)
        return .failed(reply)
    }

    struct Refusal: Error {
        var reply: SMTPReply
        var reason: String
    }

    /// The submission server's part (RFC 6409 §8): a missing From, Date or Message-ID is added
    /// (From as the logged-in user); the author fields must be readable, and every address in
    /// From and Sender must be one the user may send as (the MAIL FROM rule), or the message is
    /// refused: what Petrel signs with DKIM for a domain must have been written by someone who
    /// may speak for it. Returns the fields to add.
    static func completeSubmission(
        _ header: HeaderSection,
        malformedLine: Int?,
        _ submission: Submission
    ) async -> Result<String, Refusal> {
        if let line = malformedLine {
            return .failure(
                Refusal(
                    reply: InboundAuthentication.refusal(for: .malformedHeader(line: line)),
                    reason: "author_fields"
                )
            )
        }
        var added = ""
        let from = header.fields(named: "From")
        if from.isEmpty {
            added += "From: <\(submission.user)>\r\n"
        }
        if let problem = AuthorFields.problem(header: header, malformedLine: nil), problem != .noFrom {
            return .failure(Refusal(reply: InboundAuthentication.refusal(for: problem), reason: "author_fields"))
        }
        for field in from + header.fields(named: "Sender") {
            guard let addresses = AuthorFields.addresses(of: field) else {
                return .failure(
                    Refusal(
                        reply: InboundAuthentication.refusal(for: .unreadableFrom(field.value)),
                        reason: "author_fields"
                    )
                )
            }
            for address in addresses {
                let account = Mailbox(address).flatMap(AccountAddress.init)
                if let account, await submission.maySendAs(account) { continue }
                return .failure(
                    Refusal(
                        reply: SMTPReply(
                            550,
                            EnhancedStatusCode(5, 7, 1),
                            "\(field.name): \(address) is not an address \(submission.user) may send as"
                        ),
                        reason: "sender_not_owned"
                    )
                )
            }
        }
        if header.fields(named: "Date").isEmpty { added += "Date: \(MailReceiver.now())\r\n" }
        if header.fields(named: "Message-ID").isEmpty {
            var generator = SystemRandomNumberGenerator()
            let unique = (0..<16).map { _ in String(UInt8.random(in: 0...35, using: &generator), radix: 36) }.joined()
            added += "Message-ID: <\(unique)@\(submission.hostname)>\r\n"
        }
        return .success(added)
    }

    func discard() async {
        self.verification?.spf.cancel()
        await self.file.discard()
    }
}
