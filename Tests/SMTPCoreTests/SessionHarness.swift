import MailCore
import NIOCore
import SMTPCore
import Testing

/// Runs `SMTPInboundFramer` and `ServerSession` together in memory, performing the session's
/// actions with fakes, as the NIO connection task does with real storage. Every reply is
/// recorded; the harness checks the core invariant that each event expecting a reply gets
/// exactly one.
struct SessionHarness {
    var framer: SMTPInboundFramer
    var session: ServerSession
    /// Verdicts by recipient path; any other recipient is accepted into a mailbox of its own name.
    var verdicts: [String: ServerSession.RecipientVerdict] = [:]
    /// Answers of the fake account side to AUTH, used in order.
    var authenticationSteps: [ServerSession.AuthenticationStep] = []
    /// Decoded SASL data the session passed on (initial response first).
    var authenticationInput: [[UInt8]?] = []
    var senderVerdict = ServerSession.SenderVerdict.accepted
    var openFailure: SMTPReply?
    var commitFailure: SMTPReply?
    var replies: [SMTPReply] = []
    var continuations: [SMTPInboundFramer.Continuation] = []
    var stored: [(envelope: Envelope, content: String)] = []
    var messageOpen = false
    var content = ""
    var closed = false
    private var nextID = 1

    init(limits: SMTPLimits = SMTPLimits()) {
        self.init(configuration: .init(hostname: "mx.test", limits: limits))
    }

    init(configuration: ServerSession.Configuration) {
        self.framer = SMTPInboundFramer(limits: configuration.limits)
        self.session = ServerSession(configuration: configuration)
        self.perform(self.session.greeting())
    }

    /// Sends raw client bytes (each character U+0000...U+00FF is one octet) and returns the codes
    /// of the replies they caused, e.g. ["250", "354"].
    @discardableResult
    mutating func send(_ text: String) -> [String] {
        let before = self.replies.count
        guard !self.closed else { return [] }
        self.framer.append(ByteBuffer(bytes: text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }))
        self.drain()
        return self.replies[before...].map { String($0.code) }
    }

    /// Like `send`, with the full first line of each reply: "250 2.1.5 Recipient <a@b> OK".
    mutating func sendForText(_ text: String) -> [String] {
        let before = self.replies.count
        self.send(text)
        return self.replies[before...].map { String($0.description.split(separator: "\r\n").first ?? "") }
    }

    /// Like the NIO handler: take every event the buffered input makes, then let the session
    /// answer them one by one; the replies' continuations may let the framer make more.
    mutating func drain() {
        while !self.closed {
            var events: [SMTPInboundFramer.Event] = []
            while let event = self.framer.next() { events.append(event) }
            if events.isEmpty { return }
            for event in events where !self.closed {
                let before = self.replies.count
                switch event {
                case .messageData(let data), .chunkData(let data):
                    if self.session.isReceivingContent, self.messageOpen { self.content += String(buffer: data) }
                default:
                    break
                }
                self.perform(self.session.receive(event))
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

    mutating func perform(_ first: ServerSession.Action) {
        var action = first
        while true {
            switch action {
            case .none:
                return
            case .reply(let reply, let continuation):
                self.replies.append(reply)
                self.continuations.append(continuation)
                self.framer.replySent(then: continuation)
                if continuation == .close { self.closed = true }
                return
            case .verifySender:
                action = self.session.senderVerified(self.senderVerdict)
            case .beginAuthentication(_, let initialResponse):
                self.authenticationInput.append(initialResponse)
                action = self.session.authenticationStep(self.nextAuthenticationStep())
            case .continueAuthentication(let response):
                self.authenticationInput.append(response)
                action = self.session.authenticationStep(self.nextAuthenticationStep())
            case .cancelAuthentication:
                self.authenticationInput.append(Array("*".utf8))
                action = self.session.authenticationStep(.failed(.authenticationCancelled))
            case .verifyRecipient(let path, _):
                action = self.session.recipientVerified(
                    self.verdicts[path.description] ?? .accepted([Mailbox("box@mx.test")!])
                )
            case .openMessage:
                if let failure = self.openFailure {
                    action = self.session.messageOpened(failure: failure)
                } else {
                    self.messageOpen = true
                    self.content = ""
                    action = self.session.messageOpened(failure: nil)
                }
            case .commitMessage(let transaction):
                #expect(self.messageOpen)
                self.messageOpen = false
                if let failure = self.commitFailure {
                    action = self.session.messageCommitted(.failed(failure))
                } else {
                    self.stored.append((transaction.envelope, self.content))
                    action = self.session.messageCommitted(.stored(id: "ID\(self.nextID)"))
                    self.nextID += 1
                }
            case .discardMessage(let reply, let continuation):
                self.messageOpen = false
                guard let reply else { return }
                action = .reply(reply, then: continuation)
            }
        }
    }

    private mutating func nextAuthenticationStep() -> ServerSession.AuthenticationStep {
        self.authenticationSteps.isEmpty ? .failed(.authenticationFailed) : self.authenticationSteps.removeFirst()
    }

    mutating func timeout() -> [String] {
        let before = self.replies.count
        self.perform(self.session.timedOut())
        return self.replies[before...].map { String($0.code) }
    }

    mutating func shutdown() -> [String] {
        let before = self.replies.count
        self.perform(self.session.shutdownRequested())
        return self.replies[before...].map { String($0.code) }
    }
}
