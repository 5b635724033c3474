import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOSupport
import NIOTLS

/// What the connection's task reads: octets, and the moment a new layer is in place (TLS after
/// STARTTLS, compression after COMPRESS): everything before it in the stream came without it.
enum IMAPInbound: Sendable {
    case bytes(ByteBuffer)
    case tlsEstablished
    /// COMPRESS's compression is in place: what follows is inflated.
    case compressionStarted
}

/// Passes octets on as `IMAPInbound` and turns the end of a TLS handshake, or the compressor's
/// arrival, into an event in the same stream, so that the task knows exactly which octets came
/// before it.
final class IMAPInboundTagger: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = IMAPInbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(self.wrapInboundOut(.bytes(self.unwrapInboundIn(data))))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            context.fireChannelRead(self.wrapInboundOut(.tlsEstablished))
        }
        if event is IMAPCompressionStarted {
            context.fireChannelRead(self.wrapInboundOut(.compressionStarted))
            context.fireChannelReadComplete()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// How long a connection may stay silent, which the session changes as it goes (60 seconds
/// before login, 30 minutes after: RFC 9051 §5.4); and, until the login, the moment by which it
/// must have logged in however busily it talks (a stranger sending a byte a minute, or NOOPs,
/// holds no slot for long).
final class IMAPSilenceLimit: Sendable {
    private struct State {
        var seconds: Int64
        /// Seconds from the connection's start by which the login must come; nil once it came.
        var loginWithin: Int64?
    }

    private let state: NIOLockedValueBox<State>

    init(seconds: Int64, loginWithin: Int64? = nil) {
        self.state = NIOLockedValueBox(State(seconds: seconds, loginWithin: loginWithin))
    }

    var current: Int64 { self.state.withLockedValue { $0.seconds } }
    var loginWithin: Int64? { self.state.withLockedValue { $0.loginWithin } }

    func loggedIn(idle: Int64) {
        self.state.withLockedValue { state in
            state.seconds = idle
            state.loginWithin = nil
        }
    }
}

/// Logs a client out when it has sent nothing for the silence limit: `* BYE` and the socket
/// closed at once, whether or not the BYE can still be written (a client that does not read
/// must not keep its connection by that).
final class IMAPSilenceTimer: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limit: IMAPSilenceLimit
    /// Times of the event loop's clock (which tests can move).
    private var started = NIODeadline.uptimeNanoseconds(0)
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var timer: Scheduled<Void>?

    init(limit: IMAPSilenceLimit) {
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.started = context.eventLoop.now
        self.lastRead = self.started
        if context.channel.isActive { self.arm(context: context, after: .seconds(self.limit.current)) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(context: context, after: .seconds(self.limit.current))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.lastRead = context.eventLoop.now
        context.fireChannelRead(data)
    }

    private func arm(context: ChannelHandlerContext, after delay: TimeAmount) {
        self.timer?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.check(context: context)
        }
    }

    private func check(context: ChannelHandlerContext) {
        var deadline = self.lastRead + .seconds(self.limit.current)
        let loginWithin = self.limit.loginWithin
        if let loginWithin { deadline = min(deadline, self.started + .seconds(loginWithin)) }
        let now = context.eventLoop.now
        guard now >= deadline else {
            self.arm(context: context, after: deadline - now)
            return
        }
        var bye = context.channel.allocator.buffer(capacity: 48)
        bye.writeString(loginWithin != nil ? "* BYE log in sooner\r\n" : "* BYE autologout: idle for too long\r\n")
        context.writeAndFlush(self.wrapOutboundOut(bye), promise: nil)
        context.close(promise: nil)
    }
}

/// What the connection's task writes: octets, or STARTTLS's or COMPRESS's `OK` and the switch
/// after it, in one message so that nothing the client sends on reading the `OK` can be read
/// before the new layer is in place.
enum IMAPOutbound: Sendable {
    case bytes(ByteBuffer)
    case startTLS(ByteBuffer, TLSContextProvider, handshakeTimeout: Int64)
    case compress(ByteBuffer)
}

/// Writes the task's octets, and starts TLS (or compression) in order with them: the handlers
/// are added in the same event-loop turn as the `OK` before them goes down the pipeline, so it
/// goes out in plaintext and everything after it encrypted (compressed), both ways.
final class IMAPOutboundHandler: ChannelOutboundHandler {
    typealias OutboundIn = IMAPOutbound
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .bytes(let bytes):
            context.write(self.wrapOutboundOut(bytes), promise: promise)
        case .startTLS(let ok, let provider, let timeout):
            context.writeAndFlush(self.wrapOutboundOut(ok), promise: nil)
            do {
                try Self.addTLS(to: context.pipeline.syncOperations, provider: provider, handshakeTimeout: timeout)
                promise?.succeed()
            } catch {
                promise?.fail(error)
                context.close(promise: nil)
            }
        case .compress(let ok):
            // Below the silence timer, so that its `* BYE` is compressed too; above TLS.
            context.writeAndFlush(self.wrapOutboundOut(ok), promise: nil)
            do {
                let pipeline = context.pipeline.syncOperations
                let timer = try pipeline.handler(type: IMAPSilenceTimer.self)
                try pipeline.addHandler(IMAPDeflateHandler(), position: .before(timer))
                promise?.succeed()
                // From the head, so that the tagger (before this handler) turns it into the
                // stream's marker.
                pipeline.fireUserInboundEventTriggered(IMAPCompressionStarted())
            } catch {
                promise?.fail(error)
                context.close(promise: nil)
            }
        }
    }

    /// NIOSSL at the head of the pipeline, with the handshake's deadline after it.
    static func addTLS(
        to pipeline: ChannelPipeline.SynchronousOperations,
        provider: TLSContextProvider,
        handshakeTimeout: Int64
    ) throws {
        try pipeline.addHandler(TLSHandshakeDeadline(timeout: .seconds(handshakeTimeout)), position: .first)
        try pipeline.addHandler(NIOSSLServerHandler(context: provider.context), position: .first)
    }
}
