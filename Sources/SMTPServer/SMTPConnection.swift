import Logging
import MailCore
import NIOCore
import NIOSSL
import SMTPCore

/// What a listener is for.
public enum ListenerKind: String, Sendable, Hashable {
    /// Port 25: mail for our domains from anyone, STARTTLS offered, no AUTH, no relaying.
    case smtp
    /// Port 587 (RFC 6409): STARTTLS, then AUTH required before MAIL.
    case submission
    /// Port 465 (RFC 8314): TLS from the first octet, then AUTH required before MAIL.
    case submissions
}

/// Settings shared by every connection of a listener.
public struct SMTPServerConfiguration: Sendable {
    public var hostname: String
    public var kind: ListenerKind
    public var limits: SMTPLimits
    public var connectionLimits: ConnectionLimiter.Limits
    public var timeouts: SMTPFramingHandler.Timeouts
    /// The certificate for STARTTLS and implicit TLS; nil means no TLS at all.
    public var tls: TLSContextProvider?
    public var authMechanisms: [String]

    public init(
        hostname: String,
        kind: ListenerKind = .smtp,
        limits: SMTPLimits,
        connectionLimits: ConnectionLimiter.Limits,
        timeouts: SMTPFramingHandler.Timeouts,
        tls: TLSContextProvider? = nil,
        authMechanisms: [String] = []
    ) {
        self.hostname = hostname
        self.kind = kind
        self.limits = limits
        self.connectionLimits = connectionLimits
        self.timeouts = timeouts
        self.tls = tls
        self.authMechanisms = authMechanisms
    }

    var session: ServerSession.Configuration {
        ServerSession.Configuration(
            hostname: self.hostname,
            limits: self.limits,
            startTLS: self.tls != nil && self.kind != .submissions,
            implicitTLS: self.kind == .submissions,
            submission: self.kind != .smtp,
            authMechanisms: self.authMechanisms
        )
    }
}

/// The async half of a connection: one task that runs the `ServerSession` state machine over the
/// events from `SMTPFramingHandler`, performs the slow steps it asks for (recipient lookup,
/// storage) and writes its replies. Events are handled strictly in order, so pipelined replies
/// come out in order.
struct SMTPConnection {
    let configuration: SMTPServerConfiguration
    let receiver: any SMTPMailReceiver
    let info: ConnectionInfo
    let logger: Logger

    /// What ended the session, for the log line.
    enum Outcome: String {
        case quit
        case disconnected = "client disconnected"
        case timeout
        case shutdown
        case refused = "closed by server"
        case tlsFailed = "TLS handshake failed"
        case error
    }

    /// What a session keeps between events. Held in a struct that the event loop below passes
    /// on by `inout`, so that while the connection waits for its client (most of its life) its
    /// task holds this and the loop's small frame; the frames that handle an event (tens of
    /// kilobytes: every reply and action the session can produce) exist only while it is handled.
    /// Before, they lived in the loop's own frame: 18 KiB per idle connection.
    struct Dialogue {
        var session: ServerSession
        var message: (any IncomingMessage)?
        var authentication: (any AuthenticationExchange)?
        var outcome = Outcome.disconnected
        var lastReply: SMTPReply?
        var messages = 0
    }

    typealias Outbound = NIOAsyncChannelOutboundWriter<SMTPServerOutbound>

    /// Carries out an action and the follow-up actions of its slow steps, until a reply is sent.
    func perform(_ first: ServerSession.Action, _ dialogue: inout Dialogue, _ outbound: Outbound) async throws {
        var action = first
        while true {
            switch action {
            case .none:
                return
            case .reply(let reply, let continuation):
                dialogue.lastReply = reply
                try await outbound.write(
                    .reply(reply, then: continuation, messageOpen: dialogue.session.isMessageOpen)
                )
                return
            case .verifySender(let path, let user):
                let verdict = await self.receiver.verifySender(path, user: user, connection: self.info)
                action = dialogue.session.senderVerified(verdict)
            case .beginAuthentication(let mechanism, let initialResponse):
                let exchange = self.receiver.beginAuthentication(mechanism: mechanism, connection: self.info)
                dialogue.authentication = exchange
                action = dialogue.session.authenticationStep(await exchange.start(initialResponse: initialResponse))
            case .continueAuthentication(let response):
                guard let exchange = dialogue.authentication else {
                    action = dialogue.session.authenticationStep(.failed(.authenticationFailed))
                    continue
                }
                action = dialogue.session.authenticationStep(await exchange.receive(response))
            case .cancelAuthentication:
                let step = await dialogue.authentication?.cancel() ?? .failed(.authenticationCancelled)
                action = dialogue.session.authenticationStep(step)
            case .verifyRecipient(let path, let transaction):
                let verdict = await self.receiver.verifyRecipient(path, transaction: transaction, connection: self.info)
                action = dialogue.session.recipientVerified(verdict)
            case .openMessage(let transaction):
                switch await self.receiver.openMessage(transaction, connection: self.info) {
                case .success(let opened):
                    dialogue.message = opened
                    action = dialogue.session.messageOpened(failure: nil)
                case .failure(let error):
                    action = dialogue.session.messageOpened(failure: error.reply)
                }
            case .commitMessage:
                guard let committing = dialogue.message else {
                    action = dialogue.session.messageCommitted(.failed(.localError))
                    continue
                }
                dialogue.message = nil
                let result = await committing.commit()
                if case .stored = result { dialogue.messages += 1 }
                action = dialogue.session.messageCommitted(result)
            case .discardMessage(let reply, let continuation):
                if let discarding = dialogue.message {
                    dialogue.message = nil
                    await discarding.discard()
                }
                guard let reply else { return }
                action = .reply(reply, then: continuation)
            }
        }
    }

    /// One event from the framing handler: content to the message, then the session's answer.
    func handle(_ element: SMTPServerInbound, _ dialogue: inout Dialogue, _ outbound: Outbound) async throws {
        let action: ServerSession.Action
        switch element {
        case .event(let event):
            switch event {
            case .messageData(let content), .chunkData(let content):
                if dialogue.session.isReceivingContent, let message = dialogue.message { await message.append(content) }
            default:
                break
            }
            action = dialogue.session.receive(event)
        case .timedOut:
            dialogue.outcome = .timeout
            action = dialogue.session.timedOut()
        case .shutdownRequested:
            action = dialogue.session.shutdownRequested()
        case .tlsEstablished(let info):
            action = dialogue.session.tlsEstablished(info)
        }
        try await self.perform(action, &dialogue, outbound)
    }

    /// The greeting, or the refusal of a client the receiver turns away. Returns whether to go on.
    func greet(_ dialogue: inout Dialogue, _ outbound: Outbound) async throws -> Bool {
        if let refusal = await self.receiver.admit(connection: self.info) {
            dialogue.lastReply = refusal
            dialogue.outcome = .refused
            try await outbound.write(.reply(refusal, then: .close, messageOpen: false))
            return false
        }
        let greeting = dialogue.session.greeting()
        try await self.perform(greeting, &dialogue, outbound)
        return true
    }

    func run(_ channel: NIOAsyncChannel<SMTPServerInbound, SMTPServerOutbound>) async {
        let started = ContinuousClock.now
        var dialogue = Dialogue(session: ServerSession(configuration: self.configuration.session))

        do {
            try await channel.executeThenClose { inbound, outbound in
                guard try await self.greet(&dialogue, outbound) else {
                    try? await channel.channel.closeFuture.get()
                    return
                }
                for try await element in inbound {
                    try await self.handle(element, &dialogue, outbound)
                    if dialogue.session.isClosed { break }
                }
                if dialogue.session.isClosed {
                    // The handler closes the channel once the final reply is written.
                    try? await channel.channel.closeFuture.get()
                }
            }
        } catch let error as NIOSSLError {
            switch error {
            case .uncleanShutdown:
                // Peers closing without close_notify are common among MTAs; nothing went wrong.
                dialogue.outcome = .disconnected
            case .handshakeFailed:
                dialogue.outcome = .tlsFailed
                self.logger.notice(
                    "TLS handshake failed",
                    metadata: ["session": "\(self.info.id)", "client": "\(self.info.remoteIP)", "error": "\(error)"]
                )
            default:
                dialogue.outcome = .error
                self.logger.info("TLS error", metadata: ["session": "\(self.info.id)", "error": "\(error)"])
            }
        } catch {
            dialogue.outcome = .error
            self.logger.debug("connection error", metadata: ["session": "\(self.info.id)", "error": "\(error)"])
        }
        if let message = dialogue.message { await message.discard() }

        self.logSession(&dialogue, started: started)
    }

    /// The one line per session (synchronous, so its temporaries live on the stack, not in the
    /// task's frames).
    private func logSession(_ dialogue: inout Dialogue, started: ContinuousClock.Instant) {
        if dialogue.session.isClosed, dialogue.outcome != .timeout, let lastReply = dialogue.lastReply {
            switch (lastReply.code, lastReply.enhancedCode) {
            case (221, _): dialogue.outcome = .quit
            case (421, EnhancedStatusCode(4, 3, 2)?): dialogue.outcome = .shutdown
            default: dialogue.outcome = .refused
            }
        }
        var metadata: Logger.Metadata = [
            "session": "\(self.info.id)",
            "client": "\(self.info.remoteAddress.map(describe) ?? "unknown")",
            "helo": "\(dialogue.session.clientName ?? "-")",
            "messages": "\(dialogue.messages)",
            "duration": "\(formatDuration(ContinuousClock.now - started))",
            "outcome": "\(dialogue.outcome.rawValue)",
        ]
        metadata["listener"] = "\(self.configuration.kind.rawValue)"
        if let tls = dialogue.session.tls { metadata["tls"] = "\(tls)" }
        if let user = dialogue.session.authenticatedUser { metadata["user"] = "\(user)" }
        if dialogue.outcome == .refused || dialogue.outcome == .timeout, let lastReply = dialogue.lastReply {
            metadata["reply"] = "\(lastReply.code)\(lastReply.enhancedCode.map { " \($0)" } ?? "")"
        }
        self.logger.info("connection", metadata: metadata)
    }
}

func describe(_ address: SocketAddress) -> String {
    guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
    if case .v6 = address { return "[\(ip)]:\(port)" }
    return "\(ip):\(port)"
}

func formatDuration(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
    return "\(milliseconds / 1000).\(String(milliseconds % 1000 + 1000).dropFirst())s"
}
