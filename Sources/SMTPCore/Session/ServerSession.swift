import MailCore
import NIOCore

/// The SMTP server dialogue (RFC 5321 §4.1, §4.3.2 sequencing; RFC 3030 BDAT; RFC 2920 PIPELINING)
/// as a state machine with no I/O.
///
/// The caller feeds it framer events and the outcomes of the slow steps it asked for (recipient
/// lookup, opening and committing a message), and performs the `Action` each call returns. Every
/// event that `SMTPInboundFramer.Event.expectsReply` gets exactly one reply, possibly after some
/// of those steps, which keeps pipelined replies in order by construction.
public struct ServerSession: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// Our host name: greeting, EHLO reply, 221 and 421 texts.
        public var hostname: String
        public var limits: SMTPLimits
        /// STARTTLS is offered (RFC 3207): a certificate is configured and TLS is not up yet.
        public var startTLS: Bool
        /// The connection is TLS from its first octet (submissions, RFC 8314).
        public var implicitTLS: Bool
        /// A submission listener (RFC 6409): AUTH is offered once TLS is up, and required for MAIL.
        public var submission: Bool
        /// SASL mechanisms offered on submission listeners.
        public var authMechanisms: [String]

        public init(
            hostname: String,
            limits: SMTPLimits,
            startTLS: Bool = false,
            implicitTLS: Bool = false,
            submission: Bool = false,
            authMechanisms: [String] = []
        ) {
            self.hostname = hostname
            self.limits = limits
            self.startTLS = startTLS
            self.implicitTLS = implicitTLS
            self.submission = submission
            self.authMechanisms = authMechanisms
        }
    }

    /// What the client said in EHLO or HELO.
    public struct Greeting: Hashable, Sendable {
        public var name: String
        /// EHLO rather than HELO.
        public var extended: Bool
    }

    /// A mail transaction: from MAIL FROM to the end of the message (RFC 5321 §3.3).
    public struct Transaction: Hashable, Sendable {
        public var greeting: Greeting
        public var envelope: Envelope
        /// The SASL identity the client authenticated as, if it did.
        public var authenticatedUser: String?
        /// The TLS session the transaction runs in, if any.
        public var tls: TLSInfo?
        /// Octets announced by BDAT commands so far.
        var chunkedSize: UInt64 = 0
    }

    public enum RecipientVerdict: Hashable, Sendable {
        /// Deliver to these local mailboxes.
        case accepted([Mailbox])
        /// Send on to the recipient's own server (an authenticated user's mail to another domain).
        case relay
        case rejected(SMTPReply)
    }

    public enum SenderVerdict: Hashable, Sendable {
        case accepted
        case rejected(SMTPReply)
    }

    /// One step of a SASL exchange, as the account side decided it.
    public enum AuthenticationStep: Hashable, Sendable {
        /// Send this challenge in a 334 reply and read the client's response.
        case challenge([UInt8])
        case succeeded(user: String)
        /// 535 for bad credentials, 501 for a malformed exchange, 421 (and close) for a client
        /// address that failed too often.
        case failed(SMTPReply)
    }

    public enum CommitOutcome: Hashable, Sendable {
        /// The message is durable; `id` is its queue id.
        case stored(id: String)
        case failed(SMTPReply)
    }

    public enum Action: Hashable, Sendable {
        /// Send the reply, then read on as told.
        case reply(SMTPReply, then: SMTPInboundFramer.Continuation)
        /// Check that the authenticated user may send as this sender, then call `senderVerified`.
        case verifySender(ReversePath, user: String)
        /// Look the recipient up, then call `recipientVerified`.
        case verifyRecipient(ForwardPath, Transaction)
        /// Start a SASL exchange, then call `authenticationStep`.
        case beginAuthentication(mechanism: String, initialResponse: [UInt8]?)
        /// Pass the client's response (decoded) to the exchange, then call `authenticationStep`.
        case continueAuthentication([UInt8])
        /// The client cancelled the exchange ("*"): tell the exchange (a cancelled attempt counts
        /// as a failed one), then call `authenticationStep`.
        case cancelAuthentication
        /// Prepare storage for the message content, then call `messageOpened`.
        case openMessage(Transaction)
        /// Add this content to the open message; no reply.
        case storeContent(ByteBuffer)
        /// Make the stored content durable and deliver it, then call `messageCommitted`.
        case commitMessage(Transaction)
        /// Drop the content stored so far; then send the reply, if any.
        case discardMessage(reply: SMTPReply?, then: SMTPInboundFramer.Continuation)
        /// Nothing to do (a refused BDAT chunk is being read past).
        case none
    }

    indirect enum State: Hashable, Sendable {
        /// Greeted; waiting for EHLO or HELO.
        case ready
        case idle(Greeting)
        /// A SASL exchange is under way.
        case authenticating(Greeting)
        case verifyingSender(Transaction)
        case transaction(Transaction)
        case verifyingRecipient(Transaction, ForwardPath)
        case openingData(Transaction)
        case receivingData(Transaction)
        case openingChunk(Transaction, size: UInt64, last: Bool)
        /// Reading a BDAT chunk that is part of the message.
        case receivingChunk(Transaction, last: Bool)
        /// Between BDAT chunks, with the message open.
        case chunksPending(Transaction)
        /// Reading a refused BDAT chunk to its end; then reply and continue in `resume`.
        case discardingChunk(reply: SMTPReply, resume: State)
        case committing(Transaction)
        case closed
    }

    public let configuration: Configuration
    var state = State.ready
    var errorCount = 0
    var isShuttingDown = false
    /// TLS is up, or being set up after our 220 to STARTTLS.
    public internal(set) var tlsActive: Bool
    /// The negotiated TLS parameters, once the handshake is done.
    public private(set) var tls: TLSInfo?
    public private(set) var authenticatedUser: String?
    /// Line rules for the BDAT message being received (DATA content is checked by the framer).
    var chunkValidator: MessageTextValidator

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.tlsActive = configuration.implicitTLS
        self.chunkValidator = MessageTextValidator(maximumLineLength: configuration.limits.textLineLength - 2)
    }

    var hostname: String { self.configuration.hostname }
    var limits: SMTPLimits { self.configuration.limits }

    /// Whether message content arriving now belongs to the open message.
    var isReceivingContent: Bool {
        switch self.state {
        case .receivingData, .receivingChunk: return true
        case .ready, .idle, .authenticating, .verifyingSender, .transaction, .verifyingRecipient, .openingData,
            .openingChunk, .chunksPending, .discardingChunk, .committing, .closed:
            return false
        }
    }

    /// The states in which a command can arrive; in the others the framer delivers message
    /// content, a SASL response or nothing, so a command there is a bug in the caller.
    enum CommandState {
        case ready
        case idle(Greeting)
        case transaction(Transaction)
        /// A BDAT message is open between chunks.
        case chunksPending(Transaction)
    }

    var commandState: CommandState? {
        switch self.state {
        case .ready: return .ready
        case .idle(let greeting): return .idle(greeting)
        case .transaction(let transaction): return .transaction(transaction)
        case .chunksPending(let transaction): return .chunksPending(transaction)
        case .authenticating, .verifyingSender, .verifyingRecipient, .openingData, .receivingData, .openingChunk,
            .receivingChunk, .discardingChunk, .committing, .closed:
            return nil
        }
    }

    public var isClosed: Bool { self.state == .closed }

    /// EHLO keywords, in the order they are advertised. STARTTLS is not offered again inside TLS
    /// (RFC 3207 §4.2); AUTH only inside TLS and only on submission listeners.
    public var extensions: [String] {
        var keywords = [
            "PIPELINING", "SIZE \(self.limits.messageSize)", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING",
        ]
        if self.configuration.startTLS && !self.tlsActive { keywords.append("STARTTLS") }
        if self.configuration.submission && self.tlsActive && !self.configuration.authMechanisms.isEmpty {
            keywords.append("AUTH " + self.configuration.authMechanisms.joined(separator: " "))
        }
        return keywords
    }

    /// The last EHLO/HELO name the client gave, kept after the session ends (for logs).
    public internal(set) var clientName: String?

    // MARK: - Events

    /// The 220 greeting that opens the session.
    public func greeting() -> Action {
        .reply(.greeting(hostname: self.hostname), then: .commands)
    }

    public mutating func receive(_ event: SMTPInboundFramer.Event) -> Action {
        switch event {
        case .command(.success(let command)):
            return self.receive(command)
        case .command(.failure(let error)):
            return self.respond(error.reply)
        case .commandTooLong:
            return self.respond(.commandLineTooLong(limit: self.limits.commandLineLength))
        case .unframeableChunk(let reply):
            // The chunk boundary is lost, so nothing after this can be trusted as a command.
            let hadMessage = self.hasOpenMessage
            self.state = .closed
            return hadMessage ? .discardMessage(reply: reply, then: .close) : .reply(reply, then: .close)
        case .messageData(let content):
            // DATA content was checked by the framer, which reads it only after our 354.
            return self.isReceivingContent ? .storeContent(content) : .none
        case .chunkData(let content):
            // A chunk of the message goes to storage and through its text check; a refused
            // chunk (read all the same, RFC 3030 §2) goes nowhere.
            guard case .receivingChunk = self.state else { return .none }
            self.chunkValidator.inspect(content)
            return .storeContent(content)
        case .messageEnd(let defects):
            guard case .receivingData(let transaction) = self.state else { return self.internalError() }
            return self.finishMessage(transaction, defects: defects)
        case .chunkEnd:
            return self.chunkEnded()
        case .saslResponse(let line):
            return self.saslResponse(line)
        }
    }

    private mutating func chunkEnded() -> Action {
        switch self.state {
        case .receivingChunk(let transaction, let last):
            if last { return self.finishMessage(transaction, defects: self.chunkValidator.finalDefects) }
            self.state = .chunksPending(transaction)
            return self.respond(.chunkAccepted(octets: transaction.chunkedSize))
        case .discardingChunk(let reply, let resume):
            self.state = resume
            return self.respond(reply)
        case .ready, .idle, .authenticating, .verifyingSender, .transaction, .verifyingRecipient, .openingData,
            .receivingData, .openingChunk, .chunksPending, .committing, .closed:
            return self.internalError()
        }
    }

    public mutating func recipientVerified(_ verdict: RecipientVerdict) -> Action {
        guard case .verifyingRecipient(var transaction, let path) = self.state else { return self.internalError() }
        self.state = .transaction(transaction)
        switch verdict {
        case .accepted(let mailboxes):
            transaction.envelope.recipients.append(EnvelopeRecipient(forwardPath: path, mailboxes: mailboxes))
            self.state = .transaction(transaction)
            return self.respond(.recipientOK(path.description))
        case .relay:
            transaction.envelope.recipients.append(EnvelopeRecipient(forwardPath: path, mailboxes: []))
            self.state = .transaction(transaction)
            return self.respond(.recipientOK(path.description))
        case .rejected(let reply):
            return self.respond(reply)
        }
    }

    public mutating func senderVerified(_ verdict: SenderVerdict) -> Action {
        guard case .verifyingSender(let transaction) = self.state else { return self.internalError() }
        switch verdict {
        case .accepted:
            self.state = .transaction(transaction)
            return .reply(.senderOK(transaction.envelope.reversePath.description), then: .commands)
        case .rejected(let reply):
            self.state = .idle(transaction.greeting)
            return self.respond(reply)
        }
    }

    /// The TLS handshake finished (after STARTTLS, or at the start of an implicit-TLS connection).
    public mutating func tlsEstablished(_ info: TLSInfo) -> Action {
        self.tlsActive = true
        self.tls = info
        return .none
    }

    public mutating func authenticationStep(_ step: AuthenticationStep) -> Action {
        guard case .authenticating(let greeting) = self.state else { return self.internalError() }
        switch step {
        case .challenge(let bytes):
            return .reply(.saslChallenge(bytes), then: .saslResponse)
        case .succeeded(let user):
            self.state = .idle(greeting)
            self.authenticatedUser = user
            return .reply(.authenticationSucceeded, then: .commands)
        case .failed(let reply):
            if reply.code == 421 {
                self.state = .closed
                return .reply(reply, then: .close)
            }
            self.state = .idle(greeting)
            return self.respond(reply)
        }
    }

    /// A line the client sent in answer to a 334 challenge (RFC 4954 §4); nil when it was too long.
    private mutating func saslResponse(_ line: ByteBuffer?) -> Action {
        guard case .authenticating(let greeting) = self.state else { return self.internalError() }
        guard let line else {
            self.state = .idle(greeting)
            return self.respond(.saslMalformed("the response is too long"))
        }
        let bytes = Array(line.readableBytesView)
        if bytes == [0x2A] {  // "*"
            return .cancelAuthentication
        }
        guard let decoded = Base64.decode(bytes) else {
            self.state = .idle(greeting)
            return self.respond(.saslMalformed("the response is not valid base64"))
        }
        return .continueAuthentication(decoded)
    }

    /// Storage for the message is ready (`nil`), or could not be prepared (the reply to give).
    public mutating func messageOpened(failure: SMTPReply?) -> Action {
        switch self.state {
        case .openingData(let transaction):
            if let failure {
                self.state = .transaction(transaction)
                return self.respond(failure)
            }
            self.state = .receivingData(transaction)
            return .reply(.startMailInput, then: .messageData)
        case .openingChunk(let transaction, _, let last):
            if let failure {
                self.state = .discardingChunk(reply: failure, resume: .idle(transaction.greeting))
                return .none
            }
            self.state = .receivingChunk(transaction, last: last)
            return .none
        case .ready, .idle, .authenticating, .verifyingSender, .transaction, .verifyingRecipient, .receivingData,
            .receivingChunk, .chunksPending, .discardingChunk, .committing, .closed:
            return self.internalError()
        }
    }

    public mutating func messageCommitted(_ outcome: CommitOutcome) -> Action {
        guard case .committing(let transaction) = self.state else { return self.internalError() }
        self.state = .idle(transaction.greeting)
        let action: Action
        switch outcome {
        case .stored(let id):
            action = .reply(.messageAccepted(id: id), then: .commands)
        case .failed(let reply):
            action = self.respond(reply)
        }
        // A shutdown waits for the message in flight; the session ends with its reply.
        if self.isShuttingDown, case .reply(let reply, _) = action {
            self.state = .closed
            return .reply(reply, then: .close)
        }
        return action
    }

    /// No input within the time limit (RFC 5321 §4.5.3.2).
    public mutating func timedOut() -> Action {
        self.state = .closed
        return .reply(.timeout(hostname: self.hostname), then: .close)
    }

    /// The server is stopping: close now between transactions, or once the message in flight is done.
    public mutating func shutdownRequested() -> Action {
        self.isShuttingDown = true
        switch self.state {
        case .ready, .idle, .transaction, .authenticating:
            self.state = .closed
            return .reply(.shuttingDown(hostname: self.hostname), then: .close)
        case .verifyingSender, .verifyingRecipient, .openingData, .receivingData, .openingChunk, .receivingChunk,
            .chunksPending, .discardingChunk, .committing, .closed:
            return .none
        }
    }
}
