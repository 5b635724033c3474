import NIOCore

/// Drives one `ServerSession` over the receiver seam: hands it each event, carries out the slow
/// steps it asks for (sender check, SASL, recipient lookup, storage) through `SMTPMailReceiver`,
/// feeds message content to the message being received, and returns the reply that is due. The
/// NIO connection task and the in-memory session tests both run this one loop, so the tests see
/// what the server does (a harness of their own once drifted from it: docs/architecture.md).
///
/// It holds no I/O of its own: whoever drives it writes the replies and applies their
/// continuations to the framer.
public struct SessionDriver {
    /// A reply to write, how input is read after it, and whether a message is still open then
    /// (between BDAT chunks, after a 354): the framing handler bounds the transfer by it.
    public struct Reply {
        public var reply: SMTPReply
        public var continuation: SMTPInboundFramer.Continuation
        public var messageOpen: Bool
    }

    public private(set) var session: ServerSession
    /// The last reply given, for the session's log line.
    public private(set) var lastReply: SMTPReply?
    /// Messages stored in this session.
    public private(set) var messages = 0
    /// The receiver turned the client away at the greeting.
    public private(set) var turnedAway = false
    let receiver: any SMTPMailReceiver
    let connection: ConnectionInfo
    /// The message being received, between `openMessage` and its commit or discard.
    private var message: (any IncomingMessage)?
    /// The SASL exchange of the AUTH command in progress.
    private var authentication: (any AuthenticationExchange)?

    public init(configuration: ServerSession.Configuration, receiver: any SMTPMailReceiver, connection: ConnectionInfo)
    {
        self.session = ServerSession(configuration: configuration)
        self.receiver = receiver
        self.connection = connection
    }

    /// The greeting, or the refusal (which closes) of a client the receiver turns away.
    public mutating func greet() async -> Reply? {
        if let refusal = await self.receiver.admit(connection: self.connection) {
            self.lastReply = refusal
            self.turnedAway = true
            return Reply(reply: refusal, continuation: .close, messageOpen: false)
        }
        return await self.perform(self.session.greeting())
    }

    /// One event from the framer.
    public mutating func handle(_ event: SMTPInboundFramer.Event) async -> Reply? {
        await self.perform(self.session.receive(event))
    }

    /// A timer ended the session (421).
    public mutating func timedOut() async -> Reply? {
        await self.perform(self.session.timedOut())
    }

    /// The server is stopping (421 when the session is between messages).
    public mutating func shutdownRequested() async -> Reply? {
        await self.perform(self.session.shutdownRequested())
    }

    public mutating func tlsEstablished(_ info: TLSInfo) async -> Reply? {
        await self.perform(self.session.tlsEstablished(info))
    }

    /// The connection is over: a message still open is discarded, never stored.
    public mutating func finish() async {
        if let message = self.message {
            self.message = nil
            await message.discard()
        }
    }

    /// Carries out an action and the follow-up actions of its slow steps, until a reply is due.
    mutating func perform(_ first: ServerSession.Action) async -> Reply? {
        var action = first
        while true {
            switch action {
            case .none:
                return nil
            case .reply(let reply, let continuation):
                self.lastReply = reply
                return Reply(reply: reply, continuation: continuation, messageOpen: self.session.isMessageOpen)
            case .verifySender(let path, let user):
                let verdict = await self.receiver.verifySender(path, user: user, connection: self.connection)
                action = self.session.senderVerified(verdict)
            case .beginAuthentication(let mechanism, let initialResponse):
                let exchange = self.receiver.beginAuthentication(mechanism: mechanism, connection: self.connection)
                self.authentication = exchange
                action = self.session.authenticationStep(await exchange.start(initialResponse: initialResponse))
            case .continueAuthentication(let response):
                guard let exchange = self.authentication else {
                    action = self.session.authenticationStep(.failed(.authenticationFailed))
                    continue
                }
                action = self.session.authenticationStep(await exchange.receive(response))
            case .cancelAuthentication:
                let step = await self.authentication?.cancel() ?? .failed(.authenticationCancelled)
                action = self.session.authenticationStep(step)
            case .verifyRecipient(let path, let transaction):
                let verdict = await self.receiver.verifyRecipient(
                    path,
                    transaction: transaction,
                    connection: self.connection
                )
                action = self.session.recipientVerified(verdict)
            case .openMessage(let transaction):
                switch await self.receiver.openMessage(transaction, connection: self.connection) {
                case .success(let opened):
                    self.message = opened
                    action = self.session.messageOpened(failure: nil)
                case .failure(let error):
                    action = self.session.messageOpened(failure: error.reply)
                }
            case .storeContent(let content):
                await self.message?.append(content)
                return nil
            case .commitMessage:
                guard let committing = self.message else {
                    action = self.session.messageCommitted(.failed(.localError))
                    continue
                }
                self.message = nil
                let result = await committing.commit()
                if case .stored = result { self.messages += 1 }
                action = self.session.messageCommitted(result)
            case .discardMessage(let reply, let continuation):
                if let discarding = self.message {
                    self.message = nil
                    await discarding.discard()
                }
                guard let reply else { return nil }
                action = .reply(reply, then: continuation)
            }
        }
    }
}
