import MailCore
import NIOCore

// The session's answer to each command, and the helpers the answers share.
extension ServerSession {
    // MARK: - Commands

    mutating func receive(_ command: SMTPCommand) -> Action {
        guard let current = self.commandState else { return self.internalError() }
        if self.isShuttingDown, !self.hasOpenMessage {
            self.state = .closed
            return .reply(.shuttingDown(hostname: self.hostname), then: .close)
        }
        switch command {
        case .ehlo(let name), .helo(let name):
            let extended = command.verb == "EHLO"
            let hadMessage = self.hasOpenMessage
            self.state = .idle(Greeting(name: name, extended: extended))
            self.clientName = name
            let reply: SMTPReply =
                extended
                ? .ehlo(hostname: self.hostname, clientName: name, keywords: self.extensions)
                : .helo(hostname: self.hostname)
            return hadMessage ? .discardMessage(reply: reply, then: .commands) : .reply(reply, then: .commands)

        case .mail(let path, let parameters):
            return self.mail(path, parameters, in: current)

        case .rcpt(let path):
            return self.rcpt(path, in: current)

        case .data:
            switch current {
            case .ready, .idle:
                return self.respond(.badSequence("send MAIL FROM first"), then: .commands)
            case .chunksPending:
                return self.respond(.badSequence("DATA cannot follow BDAT"), then: .commands)
            case .transaction(let transaction):
                guard !transaction.envelope.recipients.isEmpty else {
                    return self.respond(.noValidRecipients, then: .commands)
                }
                self.state = .openingData(transaction)
                return .openMessage(transaction)
            }

        case .bdat(let size, let last):
            return self.bdat(size: size, last: last, in: current)

        case .rset:
            let hadMessage = self.hasOpenMessage
            switch current {
            case .ready:
                break
            case .idle(let greeting):
                self.state = .idle(greeting)
            case .transaction(let transaction), .chunksPending(let transaction):
                self.state = .idle(transaction.greeting)
            }
            return hadMessage ? .discardMessage(reply: .resetOK, then: .commands) : .reply(.resetOK, then: .commands)

        case .noop:
            return .reply(.ok, then: .commands)

        case .vrfy:
            // RFC 5321 §3.5.3 / §7.3: do not confirm addresses to strangers, but do not refuse either.
            return .reply(.cannotVerify, then: .commands)

        case .expn:
            return self.respond(.notImplemented("EXPN"))

        case .help:
            return .reply(.help, then: .commands)

        case .quit:
            let hadMessage = self.hasOpenMessage
            self.state = .closed
            let reply = SMTPReply.closing(hostname: self.hostname)
            return hadMessage ? .discardMessage(reply: reply, then: .close) : .reply(reply, then: .close)

        case .startTLS:
            return self.startTLS(in: current)

        case .auth(let mechanism, let initialResponse):
            return self.auth(mechanism: mechanism, initialResponse: initialResponse, in: current)
        }
    }

    mutating func mail(_ path: ReversePath, _ parameters: MailParameters, in current: CommandState) -> Action {
        let greeting: Greeting
        switch current {
        case .ready:
            return self.respond(.badSequence("send EHLO or HELO first"))
        case .transaction, .chunksPending:
            return self.respond(.badSequence("nested MAIL command"))
        case .idle(let idle):
            greeting = idle
        }
        if let size = parameters.size, size > UInt64(self.limits.messageSize) {
            return self.respond(.messageTooLarge(limit: self.limits.messageSize))
        }
        if !path.isASCII && !parameters.smtpUTF8 {
            return self.respond(.utf8AddressNeedsSMTPUTF8)
        }
        if self.configuration.submission && self.authenticatedUser == nil {
            return self.respond(.authenticationRequired)
        }
        let envelope = Envelope(
            reversePath: path,
            bodyType: parameters.body,
            smtpUTF8: parameters.smtpUTF8,
            declaredSize: parameters.size
        )
        let transaction = Transaction(
            greeting: greeting,
            envelope: envelope,
            authenticatedUser: self.authenticatedUser,
            tls: self.tls
        )
        if let user = self.authenticatedUser {
            // RFC 6409 §6.1: a submission server may check that the sender is the user's own.
            self.state = .verifyingSender(transaction)
            return .verifySender(path, user: user)
        }
        self.state = .transaction(transaction)
        return .reply(.senderOK(path.description), then: .commands)
    }

    /// STARTTLS (RFC 3207 §4): 220, then TLS; everything known from before is forgotten (§4.2).
    mutating func startTLS(in current: CommandState) -> Action {
        guard !self.tlsActive else { return self.respond(.badSequence("TLS is already active")) }
        guard self.configuration.startTLS else { return self.respond(.notImplemented("STARTTLS")) }
        switch current {
        case .ready, .idle:
            self.state = .ready
            self.tlsActive = true
            return .reply(.readyToStartTLS, then: .startTLS)
        case .transaction, .chunksPending:
            return self.respond(.badSequence("STARTTLS inside a mail transaction"))
        }
    }

    /// AUTH (RFC 4954 §4): submission listeners only, inside TLS, once, outside transactions.
    mutating func auth(mechanism: String, initialResponse: String?, in current: CommandState) -> Action {
        guard self.configuration.submission else { return self.respond(.authenticationNotEnabled) }
        guard self.tlsActive else { return self.respond(.encryptionRequired) }
        let greeting: Greeting
        switch current {
        case .ready:
            return self.respond(.badSequence("send EHLO first"))
        case .transaction, .chunksPending:
            return self.respond(.badSequence("AUTH inside a mail transaction"))
        case .idle(let idle):
            greeting = idle
        }
        guard self.authenticatedUser == nil else { return self.respond(.badSequence("already authenticated")) }
        guard self.configuration.authMechanisms.contains(mechanism) else {
            return self.respond(.unknownMechanism(mechanism))
        }
        var decoded: [UInt8]?
        if let initialResponse {
            // "=" is an empty initial response (RFC 4954 §4).
            guard let bytes = initialResponse == "=" ? [] : Base64.decode(initialResponse) else {
                return self.respond(.saslMalformed("the initial response is not valid base64"))
            }
            decoded = bytes
        }
        self.state = .authenticating(greeting)
        return .beginAuthentication(mechanism: mechanism, initialResponse: decoded)
    }

    mutating func rcpt(_ path: ForwardPath, in current: CommandState) -> Action {
        let transaction: Transaction
        switch current {
        case .ready, .idle:
            return self.respond(.badSequence("send MAIL FROM first"))
        case .chunksPending:
            return self.respond(.badSequence("RCPT cannot follow BDAT"))
        case .transaction(let open):
            transaction = open
        }
        if !path.isASCII && !transaction.envelope.smtpUTF8 {
            return self.respond(.utf8AddressNeedsSMTPUTF8)
        }
        if transaction.envelope.recipients.contains(where: { $0.forwardPath == path }) {
            // Already accepted: deliver once, and do not count it against the limit.
            return .reply(.recipientOK(path.description), then: .commands)
        }
        guard transaction.envelope.recipients.count < self.limits.recipients else {
            return .reply(.tooManyRecipients, then: .commands)
        }
        self.state = .verifyingRecipient(transaction, path)
        return .verifyRecipient(path, transaction)
    }

    mutating func bdat(size: UInt64, last: Bool, in current: CommandState) -> Action {
        switch current {
        case .ready, .idle:
            self.state = .discardingChunk(reply: .badSequence("send MAIL FROM first"), resume: self.state)
            return .none
        case .transaction(var transaction):
            guard !transaction.envelope.recipients.isEmpty else {
                self.state = .discardingChunk(reply: .noValidRecipients, resume: self.state)
                return .none
            }
            transaction.chunkedSize = size
            guard size <= UInt64(self.limits.messageSize) else {
                self.state = .discardingChunk(
                    reply: .messageTooLarge(limit: self.limits.messageSize),
                    resume: .idle(transaction.greeting)
                )
                return .none
            }
            self.state = .openingChunk(transaction, size: size, last: last)
            self.chunkValidator = MessageTextValidator(maximumLineLength: self.limits.textLineLength - 2)
            return .openMessage(transaction)
        case .chunksPending(var transaction):
            let (total, overflow) = transaction.chunkedSize.addingReportingOverflow(size)
            guard !overflow, total <= UInt64(self.limits.messageSize) else {
                // RFC 3030 §2: the chunk is still read; the transaction is over.
                self.state = .discardingChunk(
                    reply: .messageTooLarge(limit: self.limits.messageSize),
                    resume: .idle(transaction.greeting)
                )
                return .discardMessage(reply: nil, then: .commands)
            }
            transaction.chunkedSize = total
            self.state = .receivingChunk(transaction, last: last)
            return .none
        }
    }

    mutating func finishMessage(_ transaction: Transaction, defects: MessageDefects) -> Action {
        if defects.contains(.tooLarge) {
            self.state = .idle(transaction.greeting)
            return self.discard(.messageTooLarge(limit: self.limits.messageSize))
        }
        if let explanation = defects.explanation {
            self.state = .idle(transaction.greeting)
            return self.discard(.messageRefused(explanation))
        }
        self.state = .committing(transaction)
        return .commitMessage(transaction)
    }

    // MARK: - Helpers

    /// A message is open: its content is being received, or it is between BDAT chunks, or being
    /// committed. The connection bounds the time a client may take over all of this, however
    /// steadily its octets and commands come (`SMTPFramingHandler.Timeouts.dataTotal`).
    public var isMessageOpen: Bool { self.hasOpenMessage }

    var hasOpenMessage: Bool {
        switch self.state {
        case .receivingData, .receivingChunk, .chunksPending, .committing: return true
        case .ready, .idle, .authenticating, .verifyingSender, .transaction, .verifyingRecipient, .openingData,
            .openingChunk, .discardingChunk, .closed:
            return false
        }
    }

    mutating func discard(_ reply: SMTPReply) -> Action {
        switch self.respond(reply) {
        case .reply(let reply, let then):
            return .discardMessage(reply: reply, then: then)
        case let other:
            return other
        }
    }

    /// Replies, counting permanent failures: the `limits.errors`-th one becomes a 421 that ends
    /// the session, so a client cannot probe addresses or syntax forever.
    mutating func respond(
        _ reply: SMTPReply,
        then continuation: SMTPInboundFramer.Continuation = .commands
    ) -> Action {
        if reply.isPermanentFailure {
            self.errorCount += 1
            if self.errorCount >= self.limits.errors {
                self.state = .closed
                return .reply(.tooManyErrors(hostname: self.hostname), then: .close)
            }
        }
        return .reply(reply, then: continuation)
    }

    /// An event that cannot happen in this state: a bug in the caller. End the session cleanly
    /// rather than guess.
    mutating func internalError() -> Action {
        self.state = .closed
        return .reply(.localError, then: .close)
    }
}
