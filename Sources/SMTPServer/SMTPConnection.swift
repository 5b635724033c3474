import Logging
import MailCore
import NIOCore
import NIOSSL
import NIOSupport
import SMTPCore

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
        var driver: SessionDriver
        var outcome = Outcome.disconnected
    }

    typealias Outbound = NIOAsyncChannelOutboundWriter<SMTPServerOutbound>

    func write(_ reply: SessionDriver.Reply?, _ outbound: Outbound) async throws {
        guard let reply else { return }
        try await outbound.write(.reply(reply.reply, then: reply.continuation, messageOpen: reply.messageOpen))
    }

    /// One event from the framing handler, through the driver; then its reply, if one is due.
    func handle(_ element: SMTPServerInbound, _ dialogue: inout Dialogue, _ outbound: Outbound) async throws {
        let reply: SessionDriver.Reply?
        switch element {
        case .event(let event):
            reply = await dialogue.driver.handle(event)
        case .timedOut:
            dialogue.outcome = .timeout
            reply = await dialogue.driver.timedOut()
        case .shutdownRequested:
            reply = await dialogue.driver.shutdownRequested()
        case .tlsEstablished(let info):
            reply = await dialogue.driver.tlsEstablished(info)
        }
        try await self.write(reply, outbound)
    }

    /// The greeting, or the refusal of a client the receiver turns away. Returns whether to go on.
    func greet(_ dialogue: inout Dialogue, _ outbound: Outbound) async throws -> Bool {
        let greeting = await dialogue.driver.greet()
        if dialogue.driver.turnedAway { dialogue.outcome = .refused }
        try await self.write(greeting, outbound)
        return !dialogue.driver.turnedAway
    }

    func run(_ channel: NIOAsyncChannel<SMTPServerInbound, SMTPServerOutbound>) async {
        let started = ContinuousClock.now
        var dialogue = Dialogue(
            driver: SessionDriver(
                configuration: self.configuration.session,
                receiver: self.receiver,
                connection: self.info
            )
        )

        do {
            try await channel.executeThenClose { inbound, outbound in
                guard try await self.greet(&dialogue, outbound) else {
                    try? await channel.channel.closeFuture.get()
                    return
                }
                for try await element in inbound {
                    try await self.handle(element, &dialogue, outbound)
                    if dialogue.driver.session.isClosed { break }
                }
                if dialogue.driver.session.isClosed {
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
        await dialogue.driver.finish()

        self.logSession(&dialogue, started: started)
    }

    /// The one line per session (synchronous, so its temporaries live on the stack, not in the
    /// task's frames).
    private func logSession(_ dialogue: inout Dialogue, started: ContinuousClock.Instant) {
        if dialogue.driver.session.isClosed, dialogue.outcome != .timeout, let lastReply = dialogue.driver.lastReply {
            switch (lastReply.code, lastReply.enhancedCode) {
            case (221, _): dialogue.outcome = .quit
            case (421, EnhancedStatusCode(4, 3, 2)?): dialogue.outcome = .shutdown
            default: dialogue.outcome = .refused
            }
        }
        var metadata: Logger.Metadata = [
            "session": "\(self.info.id)",
            "client": "\(self.info.remoteAddress?.logText ?? "unknown")",
            "helo": "\(dialogue.driver.session.clientName ?? "-")",
            "messages": "\(dialogue.driver.messages)",
            "duration": "\(formatDuration(ContinuousClock.now - started))",
            "outcome": "\(dialogue.outcome.rawValue)",
        ]
        metadata["listener"] = "\(self.configuration.kind.rawValue)"
        if let tls = dialogue.driver.session.tls { metadata["tls"] = "\(tls)" }
        if let user = dialogue.driver.session.authenticatedUser { metadata["user"] = "\(user)" }
        if dialogue.outcome == .refused || dialogue.outcome == .timeout, let lastReply = dialogue.driver.lastReply {
            metadata["reply"] = "\(lastReply.code)\(lastReply.enhancedCode.map { " \($0)" } ?? "")"
        }
        self.logger.info("connection", metadata: metadata)
    }
}

func formatDuration(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
    return "\(milliseconds / 1000).\(String(milliseconds % 1000 + 1000).dropFirst())s"
}
