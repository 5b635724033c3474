import CFuzzDriver
import MailCore
import NIOCore
import SMTPCore

// libFuzzer target for everything a client's bytes go through before storage: SMTPInboundFramer
// (command lines, DATA with dot-stuffing, BDAT chunks, SASL lines) driving ServerSession as the
// server's SessionDriver does, but synchronously (libFuzzer calls a plain function, and the
// driver's receiver is async), with the slow steps (recipient lookup, storage, AUTH) answered by
// the input itself. Checked on every input: each event that expects a reply gets exactly one,
// no other event gets one, every reply renders as clean CRLF lines, nothing is read after a
// closing reply, plaintext pipelined behind STARTTLS is dropped, and no stored message is larger
// than the limit. Built and run by Scripts/fuzz/fuzz.sh session.
//
// Input: one octet of switches (the kind of listener, which verdicts the fakes give, how the rest
// is cut into reads), then the client's bytes.

func fuzzSession(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let switches = data[0]
    var driver = Driver(switches: switches)
    // Reads of 1 to 64 octets, their lengths a function of the switches and the position.
    var offset = 1
    var seed = UInt32(switches) &* 2_654_435_761 | 1
    while offset < size && !driver.closed {
        seed = seed &* 1_103_515_245 &+ 12_345
        let length = min(size - offset, Int(seed >> 16) % 64 + 1)
        driver.receive(UnsafeBufferPointer(start: data + offset, count: length))
        offset += length
    }
    return 0
}

struct Driver {
    var framer: SMTPInboundFramer
    var session: ServerSession
    let switches: UInt8
    var closed = false
    var messageOpen = false
    var content = 0
    var authenticationRounds = 0
    let limits: SMTPLimits

    init(switches: UInt8) {
        var limits = SMTPLimits(messageSize: 2_048, recipients: 4, errors: 6)
        limits.textLineLength = 200
        limits.commandLineLength = 128
        self.limits = limits
        self.switches = switches
        let submission = switches & 1 != 0
        let configuration = ServerSession.Configuration(
            hostname: "mx.test",
            limits: limits,
            startTLS: switches & 2 != 0,
            submission: submission,
            authMechanisms: submission ? ["PLAIN", "LOGIN"] : []
        )
        self.framer = SMTPInboundFramer(limits: limits)
        self.session = ServerSession(configuration: configuration)
        let greeting = self.session.greeting()
        guard case .reply(let reply, let continuation) = greeting, reply.code == 220, continuation == .commands else {
            preconditionFailure("the greeting is a 220")
        }
        self.framer.greetingSent(then: continuation)
    }

    mutating func receive(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.framer.append(ByteBuffer(bytes: bytes))
        while !self.closed {
            var events: [SMTPInboundFramer.Event] = []
            while let event = self.framer.next() { events.append(event) }
            if events.isEmpty { return }
            for event in events where !self.closed {
                let replies = self.perform(self.session.receive(event))
                if event.expectsReply {
                    precondition(replies == 1 || self.closed, "\(event) got \(replies) replies")
                } else {
                    precondition(replies == 0 || self.closed, "\(event) should not be answered")
                }
            }
        }
    }

    /// Carries out an action and its follow-ups; returns the number of replies sent (0 or 1).
    mutating func perform(_ first: ServerSession.Action) -> Int {
        var action = first
        while true {
            switch action {
            case .none:
                return 0
            case .storeContent(let data):
                precondition(self.messageOpen, "content for a message that is not open")
                self.content += data.readableBytes
                return 0
            case .reply(let reply, let continuation):
                checkRendered(reply)
                self.framer.replySent(then: continuation)
                switch continuation {
                case .close:
                    precondition(self.framer.isClosed && self.framer.next() == nil)
                    self.closed = true
                case .startTLS:
                    precondition(reply.code == 220)
                    // The 220 answers the last command due (the framer paused at STARTTLS): a
                    // reply still due here would be a counting mistake, and plaintext could
                    // survive into TLS.
                    precondition(self.framer.repliesDue == 0, "a reply still due at STARTTLS")
                    precondition(self.framer.bufferedBytes == 0, "plaintext kept across STARTTLS")
                    let next = self.session.tlsEstablished(TLSInfo(version: "TLSv1.3", cipher: nil))
                    precondition(next == .none)
                case .commands, .messageData, .saslResponse:
                    break
                }
                return 1
            case .verifySender:
                action = self.session.senderVerified(
                    self.switches & 4 != 0 ? .rejected(SMTPReply(550, .init(5, 7, 1), "not yours")) : .accepted
                )
            case .beginAuthentication(_, let initial):
                self.authenticationRounds = 0
                action = self.session.authenticationStep(self.authenticationStep(initial))
            case .continueAuthentication(let response):
                action = self.session.authenticationStep(self.authenticationStep(response))
            case .cancelAuthentication:
                action = self.session.authenticationStep(.failed(.authenticationCancelled))
            case .verifyRecipient(let path, let transaction):
                precondition(transaction.envelope.recipients.count < self.limits.recipients)
                let reject = self.switches & 8 != 0 && path.description.count % 2 == 0
                action = self.session.recipientVerified(
                    reject
                        ? .rejected(SMTPReply(550, .init(5, 1, 1), "no such user"))
                        : .accepted([Mailbox("box@mx.test")!])
                )
            case .openMessage(let transaction):
                precondition(!transaction.envelope.recipients.isEmpty)
                if self.switches & 16 != 0 && self.switches & 32 != 0 {
                    action = self.session.messageOpened(failure: SMTPReply(452, .init(4, 3, 1), "disk full"))
                } else {
                    precondition(!self.messageOpen)
                    self.messageOpen = true
                    self.content = 0
                    action = self.session.messageOpened(failure: nil)
                }
            case .commitMessage:
                precondition(self.messageOpen)
                precondition(self.content <= self.limits.messageSize, "a message over the size limit was committed")
                self.messageOpen = false
                action = self.session.messageCommitted(
                    self.switches & 64 != 0 ? .failed(SMTPReply(451, .init(4, 3, 0), "try later")) : .stored(id: "Q1")
                )
            case .discardMessage(let reply, let continuation):
                self.messageOpen = false
                guard let reply else { return 0 }
                action = .reply(reply, then: continuation)
            }
        }
    }

    mutating func authenticationStep(_ response: [UInt8]?) -> ServerSession.AuthenticationStep {
        self.authenticationRounds += 1
        if response == nil || self.authenticationRounds < 2 && self.switches & 128 != 0 {
            return .challenge(Array("VXNlcm5hbWU6".utf8))
        }
        if response == Array("user\u{0}user\u{0}secret".utf8) { return .succeeded(user: "user") }
        return .failed(SMTPReply(535, .init(5, 7, 8), "authentication failed"))
    }
}

/// A reply is CRLF-terminated lines of "code[- ]text": nothing a client sent can break one.
func checkRendered(_ reply: SMTPReply) {
    precondition((200...599).contains(reply.code))
    var buffer = ByteBuffer()
    reply.write(to: &buffer)
    let octets = Array(buffer.readableBytesView)
    precondition(octets.count >= 5 && octets.suffix(2) == [0x0D, 0x0A])
    var lineStart = 0
    for index in octets.indices where octets[index] == 0x0A {
        precondition(index > 0 && octets[index - 1] == 0x0D, "a bare LF in a reply")
        precondition(!octets[lineStart..<index - 1].contains(0x0D), "a bare CR in a reply")
        precondition(octets[lineStart..<lineStart + 3].elementsEqual(String(reply.code).utf8))
        lineStart = index + 1
    }
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_session_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzSession($0, size) } ?? 0 }
}
