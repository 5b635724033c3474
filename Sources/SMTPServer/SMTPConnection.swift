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

    func run(_ channel: NIOAsyncChannel<SMTPServerInbound, SMTPServerOutbound>) async {
        let started = ContinuousClock.now
        var session = ServerSession(configuration: self.configuration.session)
        var message: (any IncomingMessage)?
        var authentication: (any AuthenticationExchange)?
        var outcome = Outcome.disconnected
        var lastReply: SMTPReply?
        var messages = 0

        do {
            try await channel.executeThenClose { inbound, outbound in
                /// Carries out an action and the follow-up actions of its slow steps, until a reply is sent.
                func perform(_ first: ServerSession.Action) async throws {
                    var action = first
                    while true {
                        switch action {
                        case .none:
                            return
                        case .reply(let reply, let continuation):
                            lastReply = reply
                            try await outbound.write(.reply(reply, then: continuation))
                            return
                        case .verifySender(let path, let user):
                            let verdict = await self.receiver.verifySender(path, user: user, connection: self.info)
                            action = session.senderVerified(verdict)
                        case .beginAuthentication(let mechanism, let initialResponse):
                            let exchange = self.receiver.beginAuthentication(
                                mechanism: mechanism,
                                connection: self.info
                            )
                            authentication = exchange
                            action = session.authenticationStep(await exchange.start(initialResponse: initialResponse))
                        case .continueAuthentication(let response):
                            guard let exchange = authentication else {
                                action = session.authenticationStep(.failed(.authenticationFailed))
                                continue
                            }
                            action = session.authenticationStep(await exchange.receive(response))
                        case .verifyRecipient(let path, let transaction):
                            let verdict = await self.receiver.verifyRecipient(
                                path,
                                transaction: transaction,
                                connection: self.info
                            )
                            action = session.recipientVerified(verdict)
                        case .openMessage(let transaction):
                            switch await self.receiver.openMessage(transaction, connection: self.info) {
                            case .success(let opened):
                                message = opened
                                action = session.messageOpened(failure: nil)
                            case .failure(let error):
                                action = session.messageOpened(failure: error.reply)
                            }
                        case .commitMessage:
                            guard let committing = message else {
                                action = session.messageCommitted(.failed(.localError))
                                continue
                            }
                            message = nil
                            let result = await committing.commit()
                            if case .stored = result { messages += 1 }
                            action = session.messageCommitted(result)
                        case .discardMessage(let reply, let continuation):
                            if let discarding = message {
                                message = nil
                                await discarding.discard()
                            }
                            guard let reply else { return }
                            action = .reply(reply, then: continuation)
                        }
                    }
                }

                if let refusal = await self.receiver.admit(connection: self.info) {
                    lastReply = refusal
                    outcome = .refused
                    try await outbound.write(.reply(refusal, then: .close))
                    try? await channel.channel.closeFuture.get()
                    return
                }
                try await perform(session.greeting())
                for try await element in inbound {
                    switch element {
                    case .event(let event):
                        switch event {
                        case .messageData(let content), .chunkData(let content):
                            if session.isReceivingContent, let message { await message.append(content) }
                        default:
                            break
                        }
                        try await perform(session.receive(event))
                    case .timedOut:
                        outcome = .timeout
                        try await perform(session.timedOut())
                    case .shutdownRequested:
                        try await perform(session.shutdownRequested())
                    case .tlsEstablished(let info):
                        try await perform(session.tlsEstablished(info))
                    }
                    if session.isClosed { break }
                }
                if session.isClosed {
                    // The handler closes the channel once the final reply is written.
                    try? await channel.channel.closeFuture.get()
                }
            }
        } catch let error as NIOSSLError {
            switch error {
            case .uncleanShutdown:
                // Peers closing without close_notify are common among MTAs; nothing went wrong.
                outcome = .disconnected
            case .handshakeFailed:
                outcome = .tlsFailed
                self.logger.notice(
                    "TLS handshake failed",
                    metadata: ["session": "\(self.info.id)", "client": "\(self.info.remoteIP)", "error": "\(error)"]
                )
            default:
                outcome = .error
                self.logger.info("TLS error", metadata: ["session": "\(self.info.id)", "error": "\(error)"])
            }
        } catch {
            outcome = .error
            self.logger.debug("connection error", metadata: ["session": "\(self.info.id)", "error": "\(error)"])
        }
        if let message { await message.discard() }

        if session.isClosed, outcome != .timeout, let lastReply {
            switch (lastReply.code, lastReply.enhancedCode) {
            case (221, _): outcome = .quit
            case (421, EnhancedStatusCode(4, 3, 2)?): outcome = .shutdown
            default: outcome = .refused
            }
        }
        var metadata: Logger.Metadata = [
            "session": "\(self.info.id)",
            "client": "\(self.info.remoteAddress.map(describe) ?? "unknown")",
            "helo": "\(session.clientName ?? "-")",
            "messages": "\(messages)",
            "duration": "\(formatDuration(ContinuousClock.now - started))",
            "outcome": "\(outcome.rawValue)",
        ]
        metadata["listener"] = "\(self.configuration.kind.rawValue)"
        if let tls = session.tls { metadata["tls"] = "\(tls)" }
        if let user = session.authenticatedUser { metadata["user"] = "\(user)" }
        if outcome == .refused || outcome == .timeout, let lastReply {
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
