import Logging
import NIOCore
import NIOPosix
import NIOSupport
import SMTPCore
import ServiceLifecycle
import Synchronization

/// One listening socket serving SMTP, as a ServiceLifecycle `Service`: it accepts connections and
/// runs each in its own child task (the shape of Hummingbird's `Server`). On graceful shutdown it
/// stops accepting and asks every open session to finish (`ServerSession.shutdownRequested`).
///
/// Binding is a separate step (`bind`) so that start-up fails early and clearly when an address
/// is taken, and so that callers learn the port when they asked for port 0.
public final class SMTPListener: Service, Sendable {
    typealias Connection = NIOAsyncChannel<SMTPServerInbound, SMTPServerOutbound>
    typealias ServerChannel = NIOAsyncChannel<Accepted, Never>

    /// What the accept of a connection came to.
    enum Accepted: Sendable {
        case session(Connection)
        /// Over the connection limits: `ConnectionRefusal` turns it away on its event loop.
        case refused
    }

    public let localAddress: SocketAddress
    public var kind: ListenerKind { self.configuration.kind }
    private let serverChannel: ServerChannel
    private let configuration: SMTPServerConfiguration
    private let receiver: any SMTPMailReceiver
    private let logger: Logger
    private static let connectionCounter = Atomic<UInt64>(0)

    private init(
        serverChannel: ServerChannel,
        configuration: SMTPServerConfiguration,
        receiver: any SMTPMailReceiver,
        logger: Logger
    ) throws {
        guard let localAddress = serverChannel.channel.localAddress else {
            throw ChannelError.unknownLocalAddress
        }
        self.localAddress = localAddress
        self.serverChannel = serverChannel
        self.configuration = configuration
        self.receiver = receiver
        self.logger = logger
    }

    /// Binds `host:port` (port 0 picks a free one).
    public static func bind(
        host: String,
        port: Int,
        configuration: SMTPServerConfiguration,
        receiver: any SMTPMailReceiver,
        limiter: ConnectionLimiter,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async throws -> SMTPListener {
        let limits = configuration.limits
        let timeouts = configuration.timeouts
        let tls = configuration.tls
        let implicitTLS = configuration.kind == .submissions
        if implicitTLS && tls == nil { throw ChannelError.operationUnsupported }
        let bootstrap = ServerBootstrap.listener(host: host, group: eventLoopGroup)
        let hostname = configuration.hostname
        let kind = configuration.kind
        let channel =
            try await bootstrap
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A connection counts against the limits from its accept, before any TLS
                    // handshake and before its task runs; it is released when its socket closes.
                    let ip = channel.remoteAddress?.ipAddress ?? "unknown"
                    guard limiter.acquire(ip: ip) else {
                        // A plaintext client is told why (RFC 5321 §3.1 allows a 421 in place of
                        // the greeting); an implicit-TLS one is just closed, since a reply would
                        // first need a handshake that costs the server more than the client.
                        try channel.pipeline.syncOperations.addHandler(
                            ConnectionRefusal(reply: implicitTLS ? nil : .tooManyConnections(hostname: hostname))
                        )
                        logger.notice(
                            "connection refused",
                            metadata: [
                                "client": "\(ip)", "listener": "\(kind.rawValue)", "reason": "connection limit",
                                "open": "\(limiter.openConnections)",
                            ]
                        )
                        return Accepted.refused
                    }
                    channel.closeFuture.whenComplete { _ in limiter.release(ip: ip) }
                    try channel.pipeline.syncOperations.addHandler(
                        SMTPFramingHandler(limits: limits, timeouts: timeouts, tls: tls)
                    )
                    if implicitTLS, let tls {
                        try SMTPFramingHandler.addTLS(
                            to: channel.pipeline.syncOperations,
                            context: tls.context,
                            handshakeTimeout: timeouts.tlsHandshake
                        )
                    }
                    return Accepted.session(try Connection(wrappingChannelSynchronously: channel))
                }
            }
        return try SMTPListener(
            serverChannel: channel,
            configuration: configuration,
            receiver: receiver,
            logger: logger
        )
    }

    /// Closes the socket of a listener that will not run (start-up failed elsewhere).
    public func close() async throws {
        try await self.serverChannel.channel.close()
    }

    public func run() async throws {
        let serverChannel = self.serverChannel
        try await withGracefulShutdownHandler {
            try await serverChannel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in inbound {
                        guard case .session(let connection) = accepted else { continue }
                        let executor = EventLoopTaskExecutor(connection.channel.eventLoop)
                        group.addTask(executorPreference: executor) { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            serverChannel.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: Connection) async {
        let number = Self.connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let info = ConnectionInfo(
            id: String(number, radix: 36),
            remoteAddress: connection.channel.remoteAddress,
            localAddress: connection.channel.localAddress,
            listener: self.configuration.kind
        )
        let session = SMTPConnection(
            configuration: self.configuration,
            receiver: self.receiver,
            info: info,
            logger: self.logger
        )
        await withGracefulShutdownHandler {
            await session.run(connection)
        } onGracefulShutdown: {
            connection.channel.pipeline.fireUserInboundEventTriggered(SMTPShutdownRequest())
        }
    }
}
