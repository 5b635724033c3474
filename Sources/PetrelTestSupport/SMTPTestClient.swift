import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// One SMTP reply as a client sees it.
public struct SMTPTestReply: Sendable, CustomStringConvertible {
    public var code: Int
    /// Text of each line, without the code and separator.
    public var lines: [String]

    public var description: String { "\(self.code) \(self.lines.joined(separator: " / "))" }
    public var text: String { self.lines.joined(separator: "\n") }
}

/// What reading a reply came to.
public enum SMTPTestReadResult: Sendable, CustomStringConvertible {
    case reply(SMTPTestReply)
    case closed
    case timeout

    public var reply: SMTPTestReply? {
        if case .reply(let reply) = self { return reply }
        return nil
    }

    public var description: String {
        switch self {
        case .reply(let reply): return reply.description
        case .closed: return "closed"
        case .timeout: return "timeout"
        }
    }
}

/// A raw SMTP client for tests: sends exact bytes, reads whole (multi-line) replies, and tells a
/// closed connection from a silent one. Async all the way, so it can talk to a server running in
/// the same process without blocking the threads that server needs.
public final class SMTPTestClient: Sendable {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    let inbox: Inbox
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let reader: Task<Void, Never>

    actor Inbox {
        var bytes: [UInt8] = []
        var closed = false
        private var waiter: CheckedContinuation<Void, Never>?

        func append(_ more: ByteBuffer) {
            self.bytes += more.readableBytesView
            self.wake()
        }

        func close() {
            self.closed = true
            self.wake()
        }

        func wake() {
            self.waiter?.resume()
            self.waiter = nil
        }

        /// Returns when something changed since `count` bytes were seen, or when woken.
        func waitForChange(seen count: Int) async {
            if self.bytes.count != count || self.closed { return }
            await withCheckedContinuation { self.waiter = $0 }
        }

        /// Takes one complete reply off the front, if there is one.
        func takeReply() -> SMTPTestReply? {
            var lines: [String] = []
            var code = 0
            var index = 0
            while let lf = self.bytes[index...].firstIndex(of: 0x0A) {
                var line = self.bytes[index..<lf]
                if line.last == 0x0D { line = line.dropLast() }
                index = lf + 1
                let text = String(decoding: line, as: UTF8.self)
                guard text.count >= 3, let parsed = Int(text.prefix(3)) else {
                    lines.append(text)
                    continue
                }
                code = parsed
                let separator = text.dropFirst(3).first
                lines.append(String(text.dropFirst(4)))
                if separator != "-" {
                    self.bytes.removeFirst(index)
                    return SMTPTestReply(code: code, lines: lines)
                }
            }
            return nil
        }

        /// A complete reply if there is one, else whether the connection is closed and how many
        /// bytes are waiting.
        func poll() -> (SMTPTestReply?, closed: Bool, count: Int) {
            if let reply = self.takeReply() { return (reply, false, self.bytes.count) }
            return (nil, self.closed, self.bytes.count)
        }
    }

    private init(
        channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
        inbox: Inbox,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        reader: Task<Void, Never>
    ) {
        self.channel = channel
        self.inbox = inbox
        self.outbound = outbound
        self.reader = reader
    }

    deinit {
        // A test that fails half-way never calls close(): end the connection anyway.
        self.outbound.finish()
        self.channel.channel.close(promise: nil)
    }

    /// TLS for tests: any certificate is accepted (the server's is self-signed).
    static let tlsContext: NIOSSLContext = {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try! NIOSSLContext(configuration: configuration)
    }()

    /// - Parameter source: the local address to connect from (another loopback address, say,
    ///   so that per-client limits see another client).
    public static func connect(
        host: String = "127.0.0.1",
        port: Int,
        implicitTLS: Bool = false,
        source: String? = nil
    ) async throws
        -> SMTPTestClient
    {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        let channel =
            try await bootstrap
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: Self.tlsContext, serverHostname: nil)
                        )
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        // The connection lives in one task for the client's whole life: it reads into the inbox
        // and lends out the writer; the channel closes when the connection ends.
        let inbox = Inbox()
        let (writers, handOver) = AsyncStream<NIOAsyncChannelOutboundWriter<ByteBuffer>>.makeStream()
        let reader = Task {
            try? await channel.executeThenClose { inbound, outbound in
                handOver.yield(outbound)
                handOver.finish()
                do {
                    for try await chunk in inbound { await inbox.append(chunk) }
                } catch {}
            }
            handOver.finish()
            await inbox.close()
        }
        var iterator = writers.makeAsyncIterator()
        guard let outbound = await iterator.next() else { throw ChannelError.ioOnClosedChannel }
        return SMTPTestClient(channel: channel, inbox: inbox, outbound: outbound, reader: reader)
    }

    /// Starts TLS on the connection (after the server's 220 to STARTTLS) and waits for the
    /// handshake; false when it failed.
    public func startTLS() async -> Bool {
        let waiter = HandshakeWaiter(promise: self.channel.channel.eventLoop.makePromise())
        let result = waiter.promise.futureResult
        let pipeline = self.channel.channel.pipeline
        do {
            try await self.channel.channel.eventLoop.submit {
                let ssl = try NIOSSLClientHandler(context: Self.tlsContext, serverHostname: nil)
                try pipeline.syncOperations.addHandler(ssl, position: .first)
                try pipeline.syncOperations.addHandler(waiter, position: .after(ssl))
            }.get()
            try await result.get()
            return true
        } catch {
            return false
        }
    }

    /// The DER bytes of the certificate the server presented, once TLS is up.
    public func peerCertificate() async -> [UInt8]? {
        let pipeline = self.channel.channel.pipeline
        return try? await self.channel.channel.eventLoop.submit {
            try pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate?.toDERBytes()
        }.get()
    }

    /// Completes its promise when the TLS handshake is done, or fails it.
    final class HandshakeWaiter: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<Void>

        init(promise: EventLoopPromise<Void>) { self.promise = promise }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted = event { self.promise.succeed() }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.promise.fail(error)
            context.fireErrorCaught(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.promise.fail(ChannelError.ioOnClosedChannel)
            context.fireChannelInactive()
        }
    }

    /// Sends `text` followed by CRLF.
    public func send(_ text: String) async throws {
        try await self.sendRaw(Array(text.utf8) + [0x0D, 0x0A])
    }

    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await self.outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Reads one whole reply, or reports a close, or gives up after `timeout`.
    public func read(timeout: Duration = .seconds(10).stretched) async -> SMTPTestReadResult {
        let deadline = ContinuousClock.now + timeout
        while true {
            // One actor call for the check and the count, so that bytes arriving in between
            // cannot be missed (the wait below would then sleep until the deadline).
            let (reply, closed, seen) = await self.inbox.poll()
            if let reply { return .reply(reply) }
            if closed { return .closed }
            if ContinuousClock.now >= deadline { return .timeout }
            let inbox = self.inbox
            let alarm = Task {
                try? await Task.sleep(until: deadline, clock: .continuous)
                await inbox.wake()
            }
            await self.inbox.waitForChange(seen: seen)
            alarm.cancel()
        }
    }

    /// Reads a reply and fails unless it has the given code.
    @discardableResult
    public func expect(_ code: Int, timeout: Duration = .seconds(10).stretched) async throws -> SMTPTestReply {
        let result = await self.read(timeout: timeout)
        guard let reply = result.reply, reply.code == code else {
            throw UnexpectedReply(expected: code, got: result)
        }
        return reply
    }

    /// MAIL, a RCPT for each recipient, DATA, each answered as it should be; the content is next.
    public func startData(from sender: String, to recipients: [String]) async throws {
        try await self.send("MAIL FROM:<\(sender)>")
        try await self.expect(250)
        for recipient in recipients {
            try await self.send("RCPT TO:<\(recipient)>")
            try await self.expect(250)
        }
        try await self.send("DATA")
        try await self.expect(354)
    }

    /// A whole transaction; `content` is the message with CRLF line ends, without the final dot.
    /// Returns the 250 reply.
    @discardableResult
    public func sendMessage(
        from sender: String,
        to recipients: [String],
        content: String
    ) async throws
        -> SMTPTestReply
    {
        try await self.startData(from: sender, to: recipients)
        try await self.sendRaw(Array((content + ".\r\n").utf8))
        return try await self.expect(250)
    }

    public func close() async {
        self.outbound.finish()
        try? await self.channel.channel.close()
        await self.reader.value
    }

    public struct UnexpectedReply: Error, CustomStringConvertible {
        public let expected: Int
        public let got: SMTPTestReadResult
        public var description: String { "expected \(self.expected), got \(self.got)" }
    }
}
