import NIOCore
import NIOEmbedded
import NIOSupport
import NIOTLS
import SMTPCore
import Testing

@testable import SMTPServer

/// The deadline on a TLS handshake, on an `EmbeddedChannel` and a clock moved by hand.
struct TLSHandshakeDeadlineTests {
    @Test func aHandshakeThatNeverEndsIsClosedAtTheDeadline() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(TLSHandshakeDeadline(timeout: .seconds(30)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 465)).wait()
        loop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func aCompletedHandshakeEndsTheDeadline() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(TLSHandshakeDeadline(timeout: .seconds(30)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 465)).wait()
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        #expect(throws: (any Error).self) {
            try channel.pipeline.syncOperations.handler(type: TLSHandshakeDeadline.self)
        }
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "the handler left the pipeline with its timer")
    }
}
