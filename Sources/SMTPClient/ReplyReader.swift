import NIOCore
import NIOSSL
import NIOSupport
import NIOTLS
import SMTPCore

/// Turns the server's bytes into replies for the delivery task. Used on its channel's event
/// loop only (hence `@unchecked Sendable`).
final class ReplyReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    enum Event: Sendable {
        case reply(SMTPReply)
        case failed(ClientSession.Failure)
        case tlsEstablished(version: String)
        case tlsFailed(String)
    }

    /// Replies a server may send ahead of our reading them (pipelining sends ~ one per recipient).
    static let maximumQueued = 1024

    private var parser = SMTPReplyParser()
    private let continuation: AsyncStream<Event>.Continuation
    private var context: ChannelHandlerContext?
    private var finished = false
    private var handshaking = false
    private var tlsReply = TLSReply.notExpected

    enum TLSReply {
        case notExpected
        /// STARTTLS was sent.
        case expected
        /// Its reply is in: until the handshake starts, the server has nothing more to say.
        case received
        /// It said more.
        case injected
    }

    init(continuation: AsyncStream<Event>.Continuation) {
        self.continuation = continuation
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.finished else { return }
        let buffer = self.unwrapInboundIn(data)
        switch self.tlsReply {
        case .received, .injected:
            self.tlsReply = .injected
            return
        case .expected, .notExpected:
            break
        }
        do {
            for reply in try self.parser.feed(buffer.readableBytesView) {
                if self.tlsReply == .received {
                    self.tlsReply = .injected  // a second reply in the same read
                    return
                }
                if self.tlsReply == .expected {
                    // 220: the handshake is next and nothing else; anything else: no TLS, go on.
                    self.tlsReply = reply.code == 220 ? .received : .notExpected
                }
                if case .dropped = self.continuation.yield(.reply(reply)) {
                    self.fail(.protocolViolation("the server sent more than \(Self.maximumQueued) replies unasked"))
                    return
                }
            }
        } catch {
            self.fail(.protocolViolation("\(error)"))
        }
    }

    /// The TLS handshake starts: refused when anything is left unread after the reply to
    /// STARTTLS (RFC 3207 §4.2: what came before the handshake is not to be trusted, and a
    /// server that sends more is probably a man in the middle).
    func beginTLS() -> Bool {
        guard self.parser.isIdle, !self.finished, self.tlsReply != .injected else { return false }
        self.tlsReply = .notExpected
        self.handshaking = true
        return true
    }

    func expectTLSReply() {
        self.tlsReply = .expected
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.handshaking = false
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            self.continuation.yield(.tlsEstablished(version: handler?.tlsVersion.map(\.name) ?? "TLS"))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.handshaking {
            self.continuation.yield(.tlsFailed("\(error)"))
            self.finish()
            context.close(promise: nil)
            return
        }
        self.fail(.connection("\(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.continuation.yield(.failed(.closedByServer))
        self.finish()
        context.fireChannelInactive()
    }

    /// Ends the connection with a reason (a timeout, a malformed reply).
    func fail(_ failure: ClientSession.Failure) {
        guard !self.finished else { return }
        self.continuation.yield(.failed(failure))
        self.finish()
        self.context?.close(promise: nil)
    }

    private func finish() {
        self.finished = true
        self.continuation.finish()
    }
}
