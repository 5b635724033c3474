import NIOCore
import NIOSSL
import NIOSupport
import NIOTLS
import SMTPCore

/// What the framing handler passes to the connection task.
public enum SMTPServerInbound: Sendable {
    case event(SMTPInboundFramer.Event)
    /// A timer ran out: no command or no content within its time (RFC 5321 §4.5.3.2), or a
    /// message still not complete at `Timeouts.dataTotal`. The session answers 421 and closes.
    case timedOut
    /// The server is stopping.
    case shutdownRequested
    /// The TLS handshake completed.
    case tlsEstablished(TLSInfo)
}

/// What the connection task sends: a reply, how to read what follows it, and whether a message
/// is open after it (`ServerSession.isMessageOpen`: the transfer `Timeouts.dataTotal` bounds
/// lasts from the 354, or the first BDAT, until a reply says no message is open any more).
public enum SMTPServerOutbound: Sendable {
    case reply(SMTPReply, then: SMTPInboundFramer.Continuation, messageOpen: Bool)
}

/// A user event that asks a connection to finish up because the server is stopping.
public struct SMTPShutdownRequest: Sendable {
    public init() {}
}

/// The event-loop half of an SMTP connection: frames input with `SMTPInboundFramer`, encodes
/// replies, and applies each reply's continuation in the same event-loop tick in which the reply
/// is written, so a change of framing (DATA, and later STARTTLS) can never race with input.
///
/// It also owns three things only the event loop can do well:
/// - backpressure and fairness: at most `eventsPerTurn` events are handed on between two reads
///   from the socket, and reading stops once a bounded amount is buffered that cannot be used
///   yet (while the framer is paused waiting for a decision, or the turn is used up); the rest
///   of a used-up turn waits for the next read or `turnPause`;
/// - reply batching (RFC 2920 §3.1): a flush is held while replies to pipelined commands are still
///   due, so a pipelined group is answered in one write (unless the held replies fill the
///   outbound buffer);
/// - the timers that end a session, each closing the socket even when no reply can reach the
///   client:
///   - `idleTimer`: `Timeouts.command` (or `data` while content is read) while the server waits
///     for the client (greeting written, no reply due, not paused); then `timedOut`;
///   - `transferTimer`: `Timeouts.dataTotal` from the 354 or the first BDAT while a message is
///     open, whatever comes between BDAT chunks, not counting the time the server takes to
///     answer; then `timedOut`;
///   - `stallTimer`: `Timeouts.command` while the socket is unwritable (the client does not read
///     our replies), whatever replies are held; then a reset;
///   - `closeDeadline`: `ConnectionClosing.grace` for a reply that ends the session to go out;
///     then a reset.
///   The TLS handshake has its own deadline, in `TLSHandshakeDeadline` beside NIOSSL.
public final class SMTPFramingHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = SMTPServerInbound
    public typealias OutboundIn = SMTPServerOutbound
    public typealias OutboundOut = ByteBuffer

    public struct Timeouts: Sendable, Hashable {
        /// Waiting for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
        public var command: TimeAmount
        /// Waiting for more message content (RFC 5321 §4.5.3.2.5 asks clients for 3 minutes a block).
        public var data: TimeAmount
        /// The whole transfer of one message's content, from the 354 (or the first BDAT) to its
        /// end: `data` alone is reset by every octet, so a client sending one octet every few
        /// minutes would otherwise hold its connection for ever.
        public var dataTotal: TimeAmount
        /// A TLS handshake, from the moment TLS starts (the connection's accept on an implicit-TLS
        /// port, the 220 to STARTTLS) to its end. Until the handshake is done nothing can be
        /// written to the client, not even a timeout reply, so this deadline closes the socket.
        public var tlsHandshake: TimeAmount

        public init(
            command: TimeAmount = .minutes(5),
            data: TimeAmount = .minutes(5),
            dataTotal: TimeAmount = .minutes(30),
            tlsHandshake: TimeAmount = .seconds(30)
        ) {
            self.command = command
            self.data = data
            self.dataTotal = dataTotal
            self.tlsHandshake = tlsHandshake
        }
    }

    /// Bytes buffered while paused (or with the turn used up) before reading stops.
    static let pausedBufferLimit = 65_536
    /// Events handed on between two reads from the socket. Each reply lets the framer hand on
    /// the next pipelined command at once, and NIO runs every ready task, including the ones
    /// tasks enqueue, before it does I/O again: without a bound, a client that pipelined
    /// megabytes of commands would keep its event loop from accepting, reading or greeting anyone
    /// else until all were answered (hostile.py: a legitimate client waited 1 s per such client,
    /// 10 s behind 20 of them). Past the bound the rest waits for the next read, or `turnPause`.
    static let eventsPerTurn = 256
    /// How long the rest of a used-up turn waits when no read comes first. It must be longer than
    /// the other connections' turns on the loop together: a pause that is due before they end is
    /// run in the same round of tasks, and the loop would still not get back to I/O. A turn costs
    /// about 2.5 ms in a release build (25 ms in a debug build), so this holds for up to 40
    /// clients pipelining without pause on one event loop.
    static let turnPause = TimeAmount.milliseconds(100)
    private var framer: SMTPInboundFramer
    private let timeouts: Timeouts
    private var flushHeld = false
    private var readHeld = false
    private var idleTimer: Scheduled<Void>?
    private var idleTimerGeneration = 0
    /// The greeting (or a refusal) has been written: until then the server owes the client a
    /// reply, and a session task slow to start (a busy machine) must not cost the client its
    /// connection.
    private var greeted = false
    private var stallTimer: Scheduled<Void>?
    /// Bounds the transfer of one message (`Timeouts.dataTotal`), counted from `transferStarted`.
    private var transferTimer: Scheduled<Void>?
    private var transferStarted: NIODeadline?
    /// The session said, with its last reply, that a message is open (between BDAT chunks too,
    /// whatever commands come between them).
    private var messageOpen = false
    /// Resets the connection once a closing reply had its `ConnectionClosing.grace`.
    private var closeDeadline: Scheduled<Void>?
    private var eventsThisTurn = 0
    private var nextTurn: Scheduled<Void>?
    private let tls: TLSContextProvider?
    /// The cipher suite seen in our ServerHello, until the handshake completes.
    private var negotiatedCipher: String?

    /// - Parameter tls: where STARTTLS gets its TLS context; nil when there is no certificate.
    public init(limits: SMTPLimits, timeouts: Timeouts, tls: TLSContextProvider? = nil) {
        self.framer = SMTPInboundFramer(limits: limits)
        self.timeouts = timeouts
        self.tls = tls
    }

    /// Puts TLS at the socket end of a pipeline: NIOSSL, outside it the observer that reads the
    /// cipher suite from the ServerHello, and inside it the deadline for the handshake.
    static func addTLS(
        to pipeline: ChannelPipeline.SynchronousOperations,
        context: NIOSSLContext,
        handshakeTimeout: TimeAmount
    ) throws {
        let tls = NIOSSLServerHandler(context: context)
        try pipeline.addHandler(tls, position: .first)
        try pipeline.addHandler(TLSHandshakeDeadline(timeout: handshakeTimeout), position: .after(tls))
        try pipeline.addHandler(ServerHelloObserver(), position: .first)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.updateIdleTimer(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.updateIdleTimer(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.cancelAllTimers()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelAllTimers()
    }

    private func cancelAllTimers() {
        self.cancelIdleTimer()
        self.stallTimer?.cancel()
        self.nextTurn?.cancel()
        self.transferTimer?.cancel()
        self.closeDeadline?.cancel()
    }

    /// A client that pipelines commands but never reads the replies fills its receive window; the
    /// idle timer does not run while replies are due, so this timer bounds how long it can hold
    /// the connection. It runs whenever the socket is unwritable, whatever else is going on: the
    /// connection task may be stuck writing a reply, and only the event loop can end that.
    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.stallTimer?.cancel()
            self.stallTimer = nil
        } else {
            if self.flushHeld {
                // Held replies alone filled the outbound buffer (a pipelined batch of thousands
                // of commands): they go out now, or the connection task, waiting for writability
                // to write the replies still due, would wait for ever.
                self.flushHeld = false
                context.flush()
            }
            if self.stallTimer == nil {
                self.stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeouts.command) {
                    ConnectionClosing.abort(context: context)
                }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.framer.append(self.unwrapInboundIn(data))
        self.newTurn()
        // channelReadComplete follows and hands the events to the connection task.
        self.deliverEvents(context: context)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is SMTPShutdownRequest:
            context.fireChannelRead(self.wrapInboundOut(.shutdownRequested))
            // NIOAsyncChannel passes reads on at read-complete; this one is outside a read cycle.
            context.fireChannelReadComplete()
        case let observed as ServerHelloObserver.Observed:
            self.negotiatedCipher = observed.cipher
        case let tlsEvent as TLSUserEvent:
            if case .handshakeCompleted = tlsEvent {
                let version = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.tlsVersion
                let info = TLSInfo(version: version.map(\.name) ?? "TLS", cipher: self.negotiatedCipher)
                context.fireChannelRead(self.wrapInboundOut(.tlsEstablished(info)))
                context.fireChannelReadComplete()
            }
            context.fireUserInboundEventTriggered(event)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func read(context: ChannelHandlerContext) {
        if self.holdsRead {
            self.readHeld = true
            return
        }
        context.read()
    }

    /// Enough is buffered that cannot be used now.
    private var holdsRead: Bool {
        (self.framer.isPaused || self.eventsThisTurn >= Self.eventsPerTurn)
            && self.framer.bufferedBytes >= Self.pausedBufferLimit
    }

    private func resumeReading(context: ChannelHandlerContext) {
        if self.readHeld && !self.holdsRead {
            self.readHeld = false
            context.read()
        }
    }

    private func newTurn() {
        self.eventsThisTurn = 0
        self.nextTurn?.cancel()
        self.nextTurn = nil
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .reply(let reply, let continuation, let messageOpen):
            self.messageOpen = messageOpen
            var buffer = context.channel.allocator.buffer(capacity: 128)
            reply.write(to: &buffer)
            if self.greeted {
                self.framer.replySent(then: continuation)
            } else {
                // The first reply is the greeting (or a refusal): it answers no command.
                self.greeted = true
                self.framer.greetingSent(then: continuation)
            }
            if case .close = continuation {
                self.cancelIdleTimer()
                self.transferTimer?.cancel()
                let closing = context.eventLoop.makePromise(of: Void.self)
                closing.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                promise.map { closing.futureResult.cascade(to: $0) }
                context.writeAndFlush(self.wrapOutboundOut(buffer), promise: closing)
                self.closeAfterGrace(context: context)
                return
            }
            context.write(self.wrapOutboundOut(buffer), promise: promise)
            self.updateTransferTimer(context: context)
            if continuation != .commands {
                // A reply that changes how input is read (354, 334, 220 for STARTTLS) goes out
                // now, even if a client that did not wait for it already sent what follows.
                self.flushHeld = false
                context.flush()
            }
            if continuation == .startTLS {
                // The 220 is written in plaintext; from here on the socket speaks TLS. The framer
                // has already dropped whatever the client sent after STARTTLS (CVE-2011-0411),
                // as it does when the 220 answers the last reply due: were one still due (a
                // counting mistake), plaintext could survive into TLS, so the connection ends.
                guard let tls = self.tls, self.framer.repliesDue == 0,
                    (try? Self.addTLS(
                        to: context.pipeline.syncOperations,
                        context: tls.context,
                        handshakeTimeout: self.timeouts.tlsHandshake
                    )) != nil
                else {
                    context.close(promise: nil)
                    return
                }
            }
            // Input that waited for this decision can be read now.
            if self.deliverEvents(context: context) { context.fireChannelReadComplete() }
            self.resumeReading(context: context)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        if self.framer.repliesDue > 0 && context.channel.isWritable {
            self.flushHeld = true
        } else {
            self.flushHeld = false
            context.flush()
        }
        self.updateIdleTimer(context: context)
    }

    /// Hands on every event the buffered input makes; returns whether there was any.
    @discardableResult
    private func deliverEvents(context: ChannelHandlerContext) -> Bool {
        var delivered = false
        while self.eventsThisTurn < Self.eventsPerTurn, let event = self.framer.next() {
            delivered = true
            self.eventsThisTurn += 1
            context.fireChannelRead(self.wrapInboundOut(.event(event)))
        }
        if self.eventsThisTurn >= Self.eventsPerTurn && self.nextTurn == nil {
            self.nextTurn = context.eventLoop.assumeIsolated().scheduleTask(in: Self.turnPause) {
                self.newTurn()
                if self.deliverEvents(context: context) { context.fireChannelReadComplete() }
                self.resumeReading(context: context)
            }
        }
        if self.framer.repliesDue == 0 && self.flushHeld {
            self.flushHeld = false
            context.flush()
        }
        // Message content keeps the data timer fresh; bytes of a command line that is not yet
        // complete do not, so a client dripping one octet at a time still meets the deadline.
        if delivered || self.framer.isReadingMessage || self.idleTimer == nil {
            self.updateIdleTimer(context: context)
        }
        // Content of a first BDAT chunk starts the transfer before any reply says a message is open.
        if self.framer.isReadingMessage { self.updateTransferTimer(context: context) }
        return delivered
    }

    /// Starts the deadline of a message transfer when one begins, and ends it only when a reply
    /// says no message is open: content being read, or a reply that says a message is open, keeps
    /// it running, so commands between BDAT chunks (a NOOP every few minutes) do not reset it.
    /// The deadline counts from the transfer's start whatever happens in between. It does not
    /// fire while the client has sent all it was asked for and a reply is due (the message being
    /// checked and stored): that time is the server's, and a reset then could cut off a 250 for a
    /// message already stored. It is looked at again with the next reply.
    private func updateTransferTimer(context: ChannelHandlerContext) {
        guard self.messageOpen || self.framer.isReadingMessage else {
            self.transferTimer?.cancel()
            self.transferTimer = nil
            self.transferStarted = nil
            return
        }
        guard self.transferTimer == nil else { return }
        let started = self.transferStarted ?? context.eventLoop.now
        self.transferStarted = started
        self.transferTimer = context.eventLoop.assumeIsolated().scheduleTask(
            deadline: started + self.timeouts.dataTotal
        ) {
            self.transferTimer = nil
            guard self.framer.isReadingMessage || self.framer.repliesDue == 0 else { return }
            self.timedOut(context: context)
        }
    }

    /// A timer decided the session is over: the session answers 421 and closes; if that reply
    /// cannot reach the client within `ConnectionClosing.grace`, the connection is reset.
    private func timedOut(context: ChannelHandlerContext) {
        self.cancelIdleTimer()
        context.fireChannelRead(self.wrapInboundOut(.timedOut))
        context.fireChannelReadComplete()
        self.closeAfterGrace(context: context)
    }

    private func closeAfterGrace(context: ChannelHandlerContext) {
        guard self.closeDeadline == nil else { return }
        self.closeDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: ConnectionClosing.grace) {
            ConnectionClosing.abort(context: context)
        }
    }

    /// The timer runs only while the server is waiting for the client: greeting written, no reply
    /// due, not paused.
    private func updateIdleTimer(context: ChannelHandlerContext) {
        self.cancelIdleTimer()
        guard self.greeted, self.framer.repliesDue == 0, !self.framer.isPaused, !self.framer.isClosed else { return }
        let timeout = self.framer.isReadingMessage ? self.timeouts.data : self.timeouts.command
        self.idleTimerGeneration &+= 1
        let generation = self.idleTimerGeneration
        self.idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard self.idleTimerGeneration == generation, self.framer.repliesDue == 0, !self.framer.isClosed else {
                return
            }
            self.idleTimer = nil
            self.timedOut(context: context)
        }
    }

    private func cancelIdleTimer() {
        self.idleTimer?.cancel()
        self.idleTimer = nil
        self.idleTimerGeneration &+= 1
    }
}
