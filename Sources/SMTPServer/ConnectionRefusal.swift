import NIOCore
import NIOSupport
import SMTPCore

/// Turns away a connection over the limits on its event loop, without a task: writes the reply
/// (if any) once the socket is active and closes it, reading nothing. The close happens even when
/// the reply cannot be written within `ConnectionClosing.grace`.
final class ConnectionRefusal: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: SMTPReply?
    private var refused = false
    private var closeDeadline: Scheduled<Void>?

    init(reply: SMTPReply?) {
        self.reply = reply
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.refuse(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.refuse(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeDeadline?.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.closeDeadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whatever the client sent is not for us.
    }

    private func refuse(context: ChannelHandlerContext) {
        guard !self.refused else { return }
        self.refused = true
        guard let reply = self.reply else {
            context.close(promise: nil)
            return
        }
        // The deadline first: the write below may complete, and close the channel, at once.
        self.closeDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: ConnectionClosing.grace) {
            ConnectionClosing.abort(context: context)
        }
        var buffer = context.channel.allocator.buffer(capacity: 96)
        reply.write(to: &buffer)
        context.writeAndFlush(self.wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
