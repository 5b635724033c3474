import NIOCore
import NIOEmbedded
import NIOSupport
import SMTPCore
import Testing

@testable import SMTPServer

/// A connection over the limits, turned away on its event loop without a task.
struct ConnectionRefusalTests {
    @Test func aPlaintextClientOverTheLimitsIsToldWhyAndClosed() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ConnectionRefusal(reply: .tooManyConnections(hostname: "mx.example.test"))
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: written).hasPrefix("421 4.7.0 mx.example.test"))
        #expect(!channel.isActive)
    }

    @Test func anImplicitTLSClientOverTheLimitsIsJustClosed() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionRefusal(reply: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 465)).wait()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(!channel.isActive)
    }

    /// A client that cannot take even the 421 (its socket is full) is reset after the grace.
    @Test func aRefusalThatCannotBeWrittenStillCloses() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(WriteSwallower())
        try channel.pipeline.syncOperations.addHandler(
            ConnectionRefusal(reply: .tooManyConnections(hostname: "mx.example.test"))
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        #expect(channel.isActive)
        loop.advanceTime(by: ConnectionClosing.grace)
        #expect(!channel.isActive)
    }
}
