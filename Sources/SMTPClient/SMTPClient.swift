import NIOCore
import NIOPosix
import NIOSSL
import NIOSupport
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
        /// Why the connection ended early, when it did.
        public var failure: ClientSession.Failure?
        /// The TLS handshake failed (opportunistic TLS may then try once more in plaintext).
        public var tlsFailed: ClientSession.Failure? {
            guard let failure = self.failure, failure.isHandshake else { return nil }
            return failure
        }
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
        let server = "\(target.hostname) [\(target.address.ipText)]"
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: self.group)
                .connectTimeout(TimeAmount(self.settings.connectTimeout))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(reader)
                    }
                }
                .connect(to: target.address)
                .get()
        } catch {
            let failure = ClientSession.Failure.cannotConnect("\(error)")
            session.connectionLost(failure, server: server)
            return Attempt(outcome: session.outcome, connected: false, failure: failure)
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
                session.connectionLost(failure, server: server)
                attempt.failure = failure
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
                    try await connection.send(lines, timeout: session.timeout)
                case .requestTLS:
                    try await connection.requestTLS(timeout: session.timeout)
                case .awaitReply:
                    break
                case .startTLS:
                    switch await connection.startTLS(&iterator, timeout: session.timeout) {
                    case .success(let details):
                        attempt.tls = details
                        action = session.tlsEstablished()
                        continue
                    case .failure(let failure):
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
                case .failed(let failure):
                    throw failure
                case .tlsEstablished, .tlsFailed:
                    throw ClientSession.Failure.protocolViolation("an unexpected TLS event")
                }
            } catch {
                let failure = (error as? ClientSession.Failure) ?? .connection("\(error)")
                session.connectionLost(failure, server: server)
                channel.close(promise: nil)
                attempt.outcome = session.outcome
                attempt.failure = failure
                return attempt
            }
        }
    }
}
