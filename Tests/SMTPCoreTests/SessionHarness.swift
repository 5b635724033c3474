import MailCore
import NIOCore
import SMTPCore
import Testing

/// Runs `SMTPInboundFramer` and the server's own `SessionDriver` together in memory, with a fake
/// receiver where the server has accounts and storage. It takes the place of the NIO handler:
/// it hands the driver every event the buffered input makes and applies each reply's
/// continuation to the framer. Every reply is recorded, and the harness checks the core
/// invariant that each event expecting a reply gets exactly one.
struct SessionHarness {
    var framer: SMTPInboundFramer
    var driver: SessionDriver
    let receiver = FakeReceiver()
    var replies: [SMTPReply] = []
    var continuations: [SMTPInboundFramer.Continuation] = []
    var closed = false

    var session: ServerSession { self.driver.session }

    /// Verdicts by recipient path; any other recipient is accepted into a mailbox of its own name.
    var verdicts: [String: ServerSession.RecipientVerdict] {
        get { self.receiver.verdicts }
        nonmutating set { self.receiver.verdicts = newValue }
    }
    /// Answers of the fake account side to AUTH, used in order.
    var authenticationSteps: [ServerSession.AuthenticationStep] {
        get { self.receiver.authenticationSteps }
        nonmutating set { self.receiver.authenticationSteps = newValue }
    }
    /// Decoded SASL data the session passed on (initial response first; "*" for a cancel).
    var authenticationInput: [[UInt8]?] { self.receiver.authenticationInput }
    var senderVerdict: ServerSession.SenderVerdict {
        get { self.receiver.senderVerdict }
        nonmutating set { self.receiver.senderVerdict = newValue }
    }
    var openFailure: SMTPReply? {
        get { self.receiver.openFailure }
        nonmutating set { self.receiver.openFailure = newValue }
    }
    var commitFailure: SMTPReply? {
        get { self.receiver.commitFailure }
        nonmutating set { self.receiver.commitFailure = newValue }
    }
    var stored: [(envelope: Envelope, content: String)] { self.receiver.stored }
    var messageOpen: Bool { self.receiver.open != nil }

    init(limits: SMTPLimits = SMTPLimits()) async {
        await self.init(configuration: .init(hostname: "mx.test", limits: limits))
    }

    init(
        configuration: ServerSession.Configuration,
        directory: (domains: Set<String>, mailboxes: Set<String>)? = nil
    ) async {
        self.framer = SMTPInboundFramer(limits: configuration.limits)
        self.receiver.directory = directory
        self.driver = SessionDriver(
            configuration: configuration,
            receiver: self.receiver,
            connection: ConnectionInfo(id: "test", remoteAddress: nil, localAddress: nil)
        )
        self.record(await self.driver.greet())
    }

    /// Sends raw client bytes (each character U+0000...U+00FF is one octet) and returns the codes
    /// of the replies they caused, e.g. ["250", "354"].
    @discardableResult
    mutating func send(_ text: String) async -> [String] {
        await self.send(octets: text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
    }

    /// Like `send`, with the octets as they are.
    @discardableResult
    mutating func send(octets: [UInt8]) async -> [String] {
        let before = self.replies.count
        guard !self.closed else { return [] }
        self.framer.append(ByteBuffer(bytes: octets))
        await self.drain()
        return self.replies[before...].map { String($0.code) }
    }

    /// Like `send`, with the full first line of each reply: "250 2.1.5 Recipient <a@b> OK".
    mutating func sendForText(_ text: String) async -> [String] {
        let before = self.replies.count
        await self.send(text)
        return self.replies[before...].map { String($0.description.split(separator: "\r\n").first ?? "") }
    }

    /// Like the NIO handler: take every event the buffered input makes, then let the session
    /// answer them one by one; the replies' continuations may let the framer make more.
    mutating func drain() async {
        while !self.closed {
            var events: [SMTPInboundFramer.Event] = []
            while let event = self.framer.next() { events.append(event) }
            if events.isEmpty { return }
            for event in events where !self.closed {
                let before = self.replies.count
                self.record(await self.driver.handle(event))
                if event.expectsReply && !self.closed {
                    #expect(
                        self.replies.count == before + 1,
                        "event \(event) got \(self.replies.count - before) replies"
                    )
                } else if !event.expectsReply {
                    #expect(self.replies.count == before || self.closed, "event \(event) should not be answered")
                }
            }
        }
    }

    /// What the NIO handler does with a reply: write it, and read on as its continuation says.
    mutating func record(_ reply: SessionDriver.Reply?) {
        guard let reply else { return }
        // The first reply is the greeting, which answers no command.
        if self.replies.isEmpty {
            self.framer.greetingSent(then: reply.continuation)
        } else {
            self.framer.replySent(then: reply.continuation)
        }
        self.replies.append(reply.reply)
        self.continuations.append(reply.continuation)
        if reply.continuation == .close { self.closed = true }
    }

    /// The handshake after STARTTLS completed.
    mutating func tlsEstablished(_ info: TLSInfo) async {
        self.record(await self.driver.tlsEstablished(info))
    }

    mutating func timeout() async -> [String] {
        let before = self.replies.count
        self.record(await self.driver.timedOut())
        return self.replies[before...].map { String($0.code) }
    }

    mutating func shutdown() async -> [String] {
        let before = self.replies.count
        self.record(await self.driver.shutdownRequested())
        return self.replies[before...].map { String($0.code) }
    }
}

/// The accounts and storage of the session tests: answers set by the test, content kept in
/// memory. Used by one test at a time, from one task.
final class FakeReceiver: SMTPMailReceiver, @unchecked Sendable {
    var verdicts: [String: ServerSession.RecipientVerdict] = [:]
    var authenticationSteps: [ServerSession.AuthenticationStep] = []
    var authenticationInput: [[UInt8]?] = []
    var senderVerdict = ServerSession.SenderVerdict.accepted
    var openFailure: SMTPReply?
    var commitFailure: SMTPReply?
    var stored: [(envelope: Envelope, content: String)] = []
    /// The message being received.
    var open: FakeMessage?
    private var nextID = 1

    func verifySender(
        _ path: ReversePath,
        user: String,
        connection: ConnectionInfo
    ) async
        -> ServerSession.SenderVerdict
    {
        self.senderVerdict
    }

    func beginAuthentication(mechanism: String, connection: ConnectionInfo) -> any AuthenticationExchange {
        FakeExchange(receiver: self)
    }

    /// Our domains and mailboxes, as a server's account directory would answer for them; nil
    /// accepts every recipient not in `verdicts` into a mailbox of its own.
    var directory: (domains: Set<String>, mailboxes: Set<String>)?

    func verifyRecipient(
        _ path: ForwardPath,
        transaction: ServerSession.Transaction,
        connection: ConnectionInfo
    ) async -> ServerSession.RecipientVerdict {
        if let verdict = self.verdicts[path.description] { return verdict }
        guard let directory = self.directory, case .mailbox(let mailbox) = path else {
            return .accepted([Mailbox("box@mx.test")!])
        }
        let address = mailbox.description.lowercased()
        if directory.mailboxes.contains(address) { return .accepted([mailbox]) }
        if let domain = mailbox.domain, directory.domains.contains(domain.canonical) {
            return .rejected(.unknownRecipient(path.description))
        }
        return transaction.authenticatedUser == nil ? .rejected(.relayDenied(path.description)) : .relay
    }

    func openMessage(
        _ transaction: ServerSession.Transaction,
        connection: ConnectionInfo
    ) async -> Result<any IncomingMessage, SMTPCommandError> {
        if let failure = self.openFailure { return .failure(SMTPCommandError(failure)) }
        let message = FakeMessage(receiver: self, envelope: transaction.envelope)
        self.open = message
        return .success(message)
    }

    func nextAuthenticationStep() -> ServerSession.AuthenticationStep {
        self.authenticationSteps.isEmpty ? .failed(.authenticationFailed) : self.authenticationSteps.removeFirst()
    }

    func commit(_ message: FakeMessage) -> ServerSession.CommitOutcome {
        #expect(self.open === message, "only the open message is committed")
        self.open = nil
        if let failure = self.commitFailure { return .failed(failure) }
        self.stored.append((message.envelope, message.content))
        defer { self.nextID += 1 }
        return .stored(id: "ID\(self.nextID)")
    }
}

final class FakeMessage: IncomingMessage, @unchecked Sendable {
    unowned let receiver: FakeReceiver
    let envelope: Envelope
    var content = ""

    init(receiver: FakeReceiver, envelope: Envelope) {
        self.receiver = receiver
        self.envelope = envelope
    }

    func append(_ content: ByteBuffer) async { self.content += String(buffer: content) }
    func commit() async -> ServerSession.CommitOutcome { self.receiver.commit(self) }
    func discard() async { if self.receiver.open === self { self.receiver.open = nil } }
}

final class FakeExchange: AuthenticationExchange, @unchecked Sendable {
    unowned let receiver: FakeReceiver

    init(receiver: FakeReceiver) { self.receiver = receiver }

    func start(initialResponse: [UInt8]?) async -> ServerSession.AuthenticationStep {
        self.receiver.authenticationInput.append(initialResponse)
        return self.receiver.nextAuthenticationStep()
    }

    func receive(_ response: [UInt8]) async -> ServerSession.AuthenticationStep {
        self.receiver.authenticationInput.append(response)
        return self.receiver.nextAuthenticationStep()
    }

    func cancel() async -> ServerSession.AuthenticationStep {
        self.receiver.authenticationInput.append(Array("*".utf8))
        return .failed(.authenticationCancelled)
    }
}
