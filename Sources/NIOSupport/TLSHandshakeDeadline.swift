import NIOCore
import NIOTLS

/// Closes a connection whose TLS handshake has not completed within its deadline, then leaves
/// the pipeline once the handshake is done.
///
/// Until a handshake completes, NIOSSL holds every write, so no reply (not even the 421 of an
/// idle timeout) can reach the client, and the timers that end a session by replying would wait
/// for ever. A client that connects to an implicit-TLS port, or answers our 220 to STARTTLS, and
/// then sends nothing would hold its connection (and its slot) indefinitely; this is the bound.
/// It sits right after `NIOSSLServerHandler`, which announces the end of the handshake as a
/// user event.
public final class TLSHandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.arm(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.arm(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline?.cancel()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.deadline?.cancel()
            self.deadline = nil
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(context: ChannelHandlerContext) {
        guard self.deadline == nil else { return }
        self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            context.close(promise: nil)
        }
    }
}
