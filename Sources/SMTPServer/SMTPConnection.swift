import Logging
import MailCore
import NIOCore
import SMTPCore

/// Settings shared by every connection of a listener.
public struct SMTPServerConfiguration: Sendable {
    public var hostname: String
    public var limits: SMTPLimits
    public var connectionLimits: ConnectionLimiter.Limits
    public var timeouts: SMTPFramingHandler.Timeouts

    public init(
        hostname: String,
        limits: SMTPLimits,
        connectionLimits: ConnectionLimiter.Limits,
        timeouts: SMTPFramingHandler.Timeouts
    ) {
        self.hostname = hostname
        self.limits = limits
        self.connectionLimits = connectionLimits
        self.timeouts = timeouts
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
        case error
    }

    func run(_ channel: NIOAsyncChannel<SMTPServerInbound, SMTPServerOutbound>) async {
        let started = ContinuousClock.now
        var session = ServerSession(
            configuration: .init(hostname: self.configuration.hostname, limits: self.configuration.limits)
        )
        var message: (any IncomingMessage)?
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
                    }
                    if session.isClosed { break }
                }
                if session.isClosed {
                    // The handler closes the channel once the final reply is written.
                    try? await channel.channel.closeFuture.get()
                }
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
