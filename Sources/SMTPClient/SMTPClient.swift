import MailCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SMTPCore

/// Delivers one message to one server over SMTP: connects, drives `ClientSession`, upgrades to
/// TLS when offered (or required), streams the message through `MessageDataEncoder`, and
/// reports each recipient's result. Every wait has the limit RFC 5321 §4.5.3.2 gives it.
///
/// The server is a stranger: its replies are bounded by `SMTPReplyParser`, a server that sends
/// anything between its reply to STARTTLS and the TLS handshake is cut off (the mirror image of
/// the command injection a server must refuse), and nothing it says can make us send more than
/// the one message.
public struct SMTPClient: Sendable {
    public struct Settings: Sendable {
        /// Our name in EHLO.
        public var heloName: String
        public var connectTimeout: Duration
        /// Caps every reply timeout (RFC 5321's are minutes long); nil keeps the RFC's.
        public var replyTimeoutLimit: Duration?
        public var verifier: CertificateVerifier

        public init(
            heloName: String,
            connectTimeout: Duration = .seconds(30),
            replyTimeoutLimit: Duration? = nil,
            verifier: CertificateVerifier = CertificateVerifier()
        ) {
            self.heloName = heloName
            self.connectTimeout = connectTimeout
            self.replyTimeoutLimit = replyTimeoutLimit
            self.verifier = verifier
        }
    }

    /// One server to try.
    public struct Target: Sendable {
        /// The name the server is known by: for SNI, certificate checks and logs.
        public var hostname: String
        public var address: SocketAddress
        public var tlsPolicy: ClientSession.TLSPolicy
        /// TLS from the first octet (port 465), not STARTTLS.
        public var implicitTLS: Bool
        public var credentials: ClientSession.Credentials?

        public init(
            hostname: String,
            address: SocketAddress,
            tlsPolicy: ClientSession.TLSPolicy = .opportunistic,
            implicitTLS: Bool = false,
            credentials: ClientSession.Credentials? = nil
        ) {
            self.hostname = hostname
            self.address = address
            self.tlsPolicy = tlsPolicy
            self.implicitTLS = implicitTLS
            self.credentials = credentials
        }
    }

    /// What happened on the connection.
    public struct Attempt: Sendable {
        public var outcome: ClientSession.Outcome
        /// A TCP connection was made (otherwise the next address is as good a try).
        public var connected: Bool
        /// Set when TLS was used.
        public var tls: TLSDetails?
        /// The TLS handshake failed (opportunistic TLS may then try once more in plaintext).
        public var tlsFailed: String?
        /// Why the connection ended early, when it did.
        public var failure: String?
    }

    public let settings: Settings
    let group: any EventLoopGroup
    /// Opportunistic TLS: any version NIOSSL speaks, any certificate (recorded, not required).
    let tlsContext: NIOSSLContext
    /// Required TLS (a relay, any delivery that must verify): TLS 1.2 or later only (RFC 8996).
    let verifiedTLSContext: NIOSSLContext

    public init(settings: Settings, group: any EventLoopGroup) throws {
        self.settings = settings
        self.group = group
        var configuration = TLSConfiguration.makeClientConfiguration()
        // RFC 7435: any encryption beats none; what was verified is checked and recorded by us
        // (the callback), so NIOSSL's own host name check is off.
        configuration.minimumTLSVersion = .tlsv1
        configuration.certificateVerification = .noHostnameVerification
        // The callback verifies with swift-certificates; BoringSSL's own store would go unused.
        configuration.trustRoots = .certificates([])
        self.tlsContext = try NIOSSLContext(configuration: configuration)
        configuration.minimumTLSVersion = .tlsv12
        self.verifiedTLSContext = try NIOSSLContext(configuration: configuration)
    }

    public func deliver(
        _ envelope: ClientSession.Envelope,
        message: any OutgoingMessage,
        to target: Target
    ) async -> Attempt {
        var session = ClientSession(
            envelope: envelope,
            heloName: self.settings.heloName,
            tlsPolicy: target.implicitTLS ? .never : target.tlsPolicy,
            tlsActive: target.implicitTLS,
            credentials: target.credentials
        )
        let (stream, continuation) = AsyncStream.makeStream(
            of: ReplyReader.Event.self,
            bufferingPolicy: .bufferingOldest(ReplyReader.maximumQueued)
        )
        let reader = ReplyReader(continuation: continuation)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: self.group)
                .connectTimeout(timeAmount(self.settings.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(reader)
                    }
                }
                .connect(to: target.address)
                .get()
        } catch {
            session.connectionLost("cannot connect to \(target.hostname) [\(describe(target.address))]: \(error)")
            return Attempt(outcome: session.outcome, connected: false, failure: "\(error)")
        }
        let connection = Connection(
            channel: channel,
            reader: reader,
            target: target,
            settings: self.settings,
            tlsContext: target.tlsPolicy == .required ? self.verifiedTLSContext : self.tlsContext
        )
        var attempt = Attempt(outcome: session.outcome, connected: true)
        var iterator = stream.makeAsyncIterator()
        if target.implicitTLS {
            switch await connection.startTLS(&iterator, timeout: session.timeout) {
            case .success(let details): attempt.tls = details
            case .failure(let failure):
                session.connectionLost(failure.description)
                if failure.handshake { attempt.tlsFailed = failure.description }
                attempt.failure = failure.description
                attempt.outcome = session.outcome
                channel.close(promise: nil)
                return attempt
            }
        }
        var action = ClientSession.Action.awaitReply  // the greeting
        while true {
            do {
                switch action {
                case .send(let lines):
                    if lines == ["STARTTLS"] { try await connection.expectTLSReply() }
                    try await connection.send(lines, timeout: session.timeout)
                case .awaitReply:
                    break
                case .startTLS:
                    switch await connection.startTLS(&iterator, timeout: session.timeout) {
                    case .success(let details):
                        attempt.tls = details
                        action = session.tlsEstablished()
                        continue
                    case .failure(let failure):
                        if failure.handshake { attempt.tlsFailed = failure.description }
                        throw failure
                    }
                case .sendMessage:
                    try await connection.send(message, timeout: session.timeout)
                    session.messageSent()
                case .close:
                    channel.close(promise: nil)
                    attempt.outcome = session.outcome
                    return attempt
                }
                switch await connection.next(&iterator, timeout: session.timeout) {
                case .reply(let reply):
                    action = session.receive(reply)
                case .failed(let why):
                    throw ClientFailure(description: why)
                case .tlsEstablished, .tlsFailed:
                    throw ClientFailure(description: "unexpected TLS event")
                }
            } catch {
                let why = (error as? ClientFailure)?.description ?? "\(error)"
                session.connectionLost("\(target.hostname) [\(describe(target.address))]: \(why)")
                channel.close(promise: nil)
                attempt.outcome = session.outcome
                attempt.failure = why
                return attempt
            }
        }
    }
}

/// The octets of a message, read on demand (the queue streams it from disk).
public protocol OutgoingMessage: Sendable {
    /// Calls `write` with the message's octets, in order, one block at a time; a block is
    /// written out before the next is read.
    func stream(into write: (ByteBuffer) async throws -> Void) async throws
}

/// What TLS gave us: recorded per RFC 7435 even when not required.
public struct TLSDetails: Hashable, Sendable {
    /// "TLSv1.3".
    public var version: String
    /// The certificate chains to a trusted root and names the host.
    public var verified: Bool
    /// Why it did not verify.
    public var problem: String?
}

/// What the verification callback found, for the task that waits for the handshake.
final class VerificationRecord: Sendable {
    let problem = NIOLockedValueBox<String?>("no certificate")
}

struct ClientFailure: Error, CustomStringConvertible {
    var description: String
    /// The TLS handshake itself failed (not: the server misbehaved before it).
    var handshake = false
}

/// One connection's I/O, on behalf of `SMTPClient.deliver`.
struct Connection {
    let channel: any Channel
    let reader: ReplyReader
    let target: SMTPClient.Target
    let settings: SMTPClient.Settings
    let tlsContext: NIOSSLContext

    func limit(_ timeout: Duration) -> Duration {
        guard let cap = self.settings.replyTimeoutLimit else { return timeout }
        return min(timeout, cap)
    }

    /// Arms a timer that ends the connection if `body` takes longer than `timeout`.
    func within<T>(_ timeout: Duration, _ what: String, _ body: () async throws -> T) async rethrows -> T {
        let limit = self.limit(timeout)
        let reader = self.reader
        let timer = self.channel.eventLoop.scheduleTask(in: timeAmount(limit)) {
            reader.fail("timed out after \(limit.components.seconds) s \(what)")
        }
        defer { timer.cancel() }
        return try await body()
    }

    func next(_ iterator: inout AsyncStream<ReplyReader.Event>.Iterator, timeout: Duration) async -> ReplyReader.Event {
        let limit = self.limit(timeout)
        let reader = self.reader
        let timer = self.channel.eventLoop.scheduleTask(in: timeAmount(limit)) {
            reader.fail("timed out after \(limit.components.seconds) s waiting for a reply")
        }
        defer { timer.cancel() }
        return await iterator.next() ?? .failed("connection closed")
    }

    /// The next reply is the one to STARTTLS: nothing may follow it in plaintext.
    func expectTLSReply() async throws {
        let reader = self.reader
        try await self.channel.eventLoop.submit { reader.expectTLSReply() }.get()
    }

    func send(_ lines: [String], timeout: Duration) async throws {
        var buffer = ByteBuffer()
        for line in lines {
            buffer.writeString(line)
            buffer.writeBytes([0x0D, 0x0A])
        }
        try await self.within(timeout, "sending a command") {
            try await self.channel.writeAndFlush(buffer)
        }
    }

    /// Streams the message through the encoder; the final "." goes with the last block.
    func send(_ message: any OutgoingMessage, timeout: Duration) async throws {
        var encoder = MessageDataEncoder()
        var output: [UInt8] = []
        try await message.stream { block in
            output.removeAll(keepingCapacity: true)
            encoder.encode(block.readableBytesView, into: &output)
            let buffer = ByteBuffer(bytes: output)
            try await self.within(timeout, "sending the message") {
                try await self.channel.writeAndFlush(buffer)
            }
        }
        output.removeAll(keepingCapacity: true)
        encoder.finish(into: &output)
        let buffer = ByteBuffer(bytes: output)
        try await self.within(timeout, "sending the message") {
            try await self.channel.writeAndFlush(buffer)
        }
    }

    /// Adds TLS in front of the reader and waits for the handshake.
    func startTLS(
        _ iterator: inout AsyncStream<ReplyReader.Event>.Iterator,
        timeout: Duration
    ) async -> Result<TLSDetails, ClientFailure> {
        let verification = VerificationRecord()
        let verifier = self.settings.verifier
        let hostname = self.target.hostname
        let required = self.target.tlsPolicy == .required
        let reader = self.reader
        let channel = self.channel
        let context = self.tlsContext
        // SNI takes a host name, never an address literal.
        let serverName = IPAddress(hostname) == nil && !hostname.isEmpty ? hostname : nil
        do {
            try await channel.eventLoop.submit {
                guard reader.beginTLS() else {
                    throw ClientFailure(description: "the server sent data after its reply to STARTTLS")
                }
                let callback: NIOSSLCustomVerificationCallback = { certificates, promise in
                    Task {
                        let result = await verifier.verify(certificates, hostname: hostname)
                        verification.problem.withLockedValue { $0 = result }
                        // Opportunistic TLS takes any certificate (RFC 7435 §3); a relay must prove itself.
                        promise.succeed(required && result != nil ? .failed : .certificateVerified)
                    }
                }
                let handler = try NIOSSLClientHandler(
                    context: context,
                    serverHostname: serverName,
                    customVerificationCallback: callback
                )
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            }.get()
        } catch {
            return .failure((error as? ClientFailure) ?? ClientFailure(description: "TLS: \(error)"))
        }
        switch await self.next(&iterator, timeout: timeout) {
        case .tlsEstablished(let version):
            let problem = verification.problem.withLockedValue { $0 }
            return .success(TLSDetails(version: version, verified: problem == nil, problem: problem))
        case .tlsFailed(let why):
            if required, let problem = verification.problem.withLockedValue({ $0 }) {
                return .failure(ClientFailure(description: "TLS: certificate not trusted: \(problem)", handshake: true))
            }
            return .failure(ClientFailure(description: "TLS handshake failed: \(why)", handshake: true))
        case .failed(let why):
            return .failure(ClientFailure(description: "TLS handshake: \(why)", handshake: true))
        case .reply:
            return .failure(ClientFailure(description: "the server sent a reply instead of a TLS handshake"))
        }
    }
}

/// Turns the server's bytes into replies for the delivery task. Used on its channel's event
/// loop only (hence `@unchecked Sendable`).
final class ReplyReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    enum Event: Sendable {
        case reply(SMTPReply)
        case failed(String)
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
                    self.fail("the server sent more than \(Self.maximumQueued) replies unasked")
                    return
                }
            }
        } catch {
            self.fail("\(error)")
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
            self.continuation.yield(.tlsEstablished(version: handler?.tlsVersion.map(Self.name) ?? "TLS"))
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
        self.fail("\(error)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.continuation.yield(.failed("the server closed the connection"))
        self.finish()
        context.fireChannelInactive()
    }

    /// Ends the connection with a reason (a timeout, a malformed reply).
    func fail(_ why: String) {
        guard !self.finished else { return }
        self.continuation.yield(.failed(why))
        self.finish()
        self.context?.close(promise: nil)
    }

    private func finish() {
        self.finished = true
        self.continuation.finish()
    }

    static func name(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: return "TLSv1"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }
}

func timeAmount(_ duration: Duration) -> TimeAmount {
    let (seconds, attoseconds) = duration.components
    return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
}

func describe(_ address: SocketAddress) -> String {
    address.ipAddress ?? "\(address)"
}
