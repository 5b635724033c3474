import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOSupport
import NIOTLS

/// What the connection's task reads: octets, and the moment a TLS handshake after STARTTLS
/// completed (everything before it in the stream was sent in plaintext).
enum IMAPInbound: Sendable {
    case bytes(ByteBuffer)
    case tlsEstablished
}

/// Passes octets on as `IMAPInbound` and turns the end of a TLS handshake into an event in the
/// same stream, so that the task knows exactly which octets came before it.
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
        context.fireUserInboundEventTriggered(event)
    }
}

/// How long a connection may stay silent, which the session changes as it goes (60 seconds
/// before login, 30 minutes after: RFC 9051 §5.4).
final class IMAPSilenceLimit: Sendable {
    private let seconds: NIOLockedValueBox<Int64>

    init(seconds: Int64) {
        self.seconds = NIOLockedValueBox(seconds)
    }

    var current: Int64 {
        get { self.seconds.withLockedValue { $0 } }
        set { self.seconds.withLockedValue { $0 = newValue } }
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
    private var lastRead = NIODeadline.now()
    private var timer: Scheduled<Void>?

    init(limit: IMAPSilenceLimit) {
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
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
        self.lastRead = .now()
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
        let deadline = self.lastRead + .seconds(self.limit.current)
        let now = NIODeadline.now()
        guard now >= deadline else {
            self.arm(context: context, after: deadline - now)
            return
        }
        var bye = context.channel.allocator.buffer(capacity: 48)
        bye.writeString("* BYE autologout: idle for too long\r\n")
        context.writeAndFlush(self.wrapOutboundOut(bye), promise: nil)
        context.close(promise: nil)
    }
}

/// What the connection's task writes: octets, or the switch to TLS after STARTTLS's `OK`.
enum IMAPOutbound: Sendable {
    case bytes(ByteBuffer)
    case startTLS(TLSContextProvider, handshakeTimeout: Int64)
}

/// Writes the task's octets, and starts TLS in order with them: the handlers are added when
/// the `OK` before them has gone down the pipeline, so it goes out in plaintext and everything
/// after it encrypted.
final class IMAPOutboundHandler: ChannelOutboundHandler {
    typealias OutboundIn = IMAPOutbound
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .bytes(let bytes):
            context.write(self.wrapOutboundOut(bytes), promise: promise)
        case .startTLS(let provider, let timeout):
            context.flush()
            do {
                try Self.addTLS(to: context.pipeline.syncOperations, provider: provider, handshakeTimeout: timeout)
                promise?.succeed()
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
