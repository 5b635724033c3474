import Accounts
import Logging
import MailAuth
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import SMTPCore

/// A message on its way into the Maildirs and the queue. Its header section is held (by the
/// scanner, once) until it is complete, so that Authentication-Results fields claiming to be ours
/// can be dropped; the body streams to disk (and through the DKIM body hashes) as it comes.
final class MessageBeingReceived: IncomingMessage {
    struct Verification: Sendable {
        var spf: Task<SPFVerdict?, Never>
        var heloIdentity: Bool
    }

    /// A logged-in user's message (submission): who, and what the user may send as.
    struct Submitter: Sendable {
        var user: AccountAddress
        var maySendAs: @Sendable (AccountAddress) async -> Bool
    }

    struct Reading {
        var scanner: MessageScanner
        var headerWritten = false
    }

    let file: any MessageWriting
    let envelope: Envelope
    let queueEntry: QueueEntry?
    /// Return-Path and Received.
    let trace: TraceHeaders
    let inbound: InboundAuthentication
    /// nil when the message is not checked (a logged-in user's).
    let verification: Verification?
    /// nil for mail from other servers.
    let submitter: Submitter?
    /// Our host name, for a Message-ID the submission server adds.
    let hostname: String
    let queued: @Sendable (String) -> Void
    let metrics: IntakeMetrics
    let connection: ConnectionInfo
    let logger: Logger
    private let reading: NIOLockedValueBox<Reading>

    init(
        file: any MessageWriting,
        envelope: Envelope,
        queueEntry: QueueEntry?,
        trace: TraceHeaders,
        inbound: InboundAuthentication,
        verification: Verification?,
        submitter: Submitter?,
        hostname: String,
        scanner: MessageScanner,
        queued: @escaping @Sendable (String) -> Void,
        metrics: IntakeMetrics,
        connection: ConnectionInfo,
        logger: Logger
    ) {
        self.queued = queued
        self.metrics = metrics
        self.file = file
        self.envelope = envelope
        self.queueEntry = queueEntry
        self.trace = trace
        self.inbound = inbound
        self.verification = verification
        self.submitter = submitter
        self.hostname = hostname
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
        for field in header.fields where !self.inbound.isForgedResults(field) {
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
        if let submitter = self.submitter {
            switch await self.completeSubmission(header, malformedLine: scanned.malformedLine, submitter) {
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
            outcome = await self.inbound.evaluate(
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
            return .failed(error.smtpReply)
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
        if let queueEntry {
            metadata["queued"] = "\(queueEntry.recipients.map(\.address.description).joined(separator: ","))"
        }
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
            "reply": "\(reply.logText)",
        ]
        if let auth { metadata["auth"] = "\(auth)" }
        if let user = self.submitter?.user { metadata["user"] = "\(user)" }
        self.logger.info("message refused", metadata: metadata)
        return .failed(reply)
    }

    struct Refusal: Error {
        var reply: SMTPReply
        var reason: String
    }

    /// The submission server's part (RFC 6409 §8, `AuthorFields.submission`): every address in
    /// From and Sender must be one the user may send as (the MAIL FROM rule), or the message is
    /// refused, since what Petrel signs with a domain's DKIM key must have been written by
    /// someone who may speak for it; a missing From (the user), Date or Message-ID is added.
    /// Returns the fields to add.
    func completeSubmission(
        _ header: HeaderSection,
        malformedLine: Int?,
        _ submitter: Submitter
    ) async -> Result<String, Refusal> {
        let submission: AuthorFields.Submission
        switch AuthorFields.submission(header: header, malformedLine: malformedLine) {
        case .success(let read): submission = read
        case .failure(let problem):
            return .failure(Refusal(reply: InboundAuthentication.refusal(for: problem), reason: "author_fields"))
        }
        for sender in submission.senders {
            let account = Mailbox(sender.address).flatMap(AccountAddress.init)
            if let account, await submitter.maySendAs(account) { continue }
            let text = "\(sender.field): \(sender.address) is not an address \(submitter.user) may send as"
            return .failure(
                Refusal(reply: SMTPReply(550, EnhancedStatusCode(5, 7, 1), text), reason: "sender_not_owned")
            )
        }
        var added = ""
        if submission.addFrom { added += "From: <\(submitter.user)>\r\n" }
        if submission.addDate { added += "Date: \(MailReceiver.now())\r\n" }
        if submission.addMessageID {
            var generator = SystemRandomNumberGenerator()
            let unique = (0..<16).map { _ in String(UInt8.random(in: 0...35, using: &generator), radix: 36) }.joined()
            added += "Message-ID: <\(self.file.id).\(unique)@\(self.hostname)>\r\n"
        }
        return .success(added)
    }

    func discard() async {
        self.verification?.spf.cancel()
        await self.file.discard()
    }
}
