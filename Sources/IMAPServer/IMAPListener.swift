import IMAPCore
import Logging
import MailStore
import NIOCore
import NIOPosix
import NIOSupport
import ServiceLifecycle
import Synchronization

/// One listening socket serving IMAP, as a ServiceLifecycle `Service` (the shape of
/// `SMTPListener`): each connection runs in its own child task on its event loop. On graceful
/// shutdown it stops accepting and asks each session to end (`* BYE`) after its current command.
public final class IMAPListener: Service, Sendable {
    typealias ServerChannel = NIOAsyncChannel<Accepted, Never>

    enum Accepted: Sendable {
        case session(IMAPConnection.Channel, IMAPSilenceLimit)
        case refused
    }

    public let localAddress: SocketAddress
    public let kind: IMAPServerConfiguration.Kind
    private let serverChannel: ServerChannel
    private let configuration: IMAPServerConfiguration
    private let accounts: MailAccounts
    private let service: any IMAPAccountService
    private let users: IMAPUserSessions
    private let metrics: IMAPMetrics
    private let logger: Logger
    private static let connectionCounter = Atomic<UInt64>(0)

    private init(
        serverChannel: ServerChannel,
        configuration: IMAPServerConfiguration,
        accounts: MailAccounts,
        service: any IMAPAccountService,
        users: IMAPUserSessions,
        metrics: IMAPMetrics,
        logger: Logger
    ) throws {
        guard let localAddress = serverChannel.channel.localAddress else { throw ChannelError.unknownLocalAddress }
        self.localAddress = localAddress
        self.kind = configuration.kind
        self.serverChannel = serverChannel
        self.configuration = configuration
        self.accounts = accounts
        self.service = service
        self.users = users
        self.metrics = metrics
        self.logger = logger
    }

    /// Binds `host:port` (port 0 picks a free one).
    /// - Parameters:
    ///   - limiter: IMAP's own connection limits (separate from SMTP's: a mail client behind
    ///     NAT keeps several connections open all day).
    ///   - users: the count of each user's sessions, shared by all IMAP listeners.
    public static func bind(
        host: String,
        port: Int,
        configuration: IMAPServerConfiguration,
        accounts: MailAccounts,
        service: any IMAPAccountService,
        limiter: ConnectionLimiter,
        users: IMAPUserSessions,
        metrics: IMAPMetrics = IMAPMetrics(factory: nil),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async throws -> IMAPListener {
        let implicitTLS = configuration.kind == .imaps
        if implicitTLS && configuration.tls == nil { throw ChannelError.operationUnsupported }
        let bootstrap = ServerBootstrap.listener(host: host, group: eventLoopGroup)
        let kind = configuration.kind
        let channel =
            try await bootstrap
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ip = channel.remoteAddress?.ipAddress ?? "unknown"
                    guard limiter.acquire(ip: ip) else {
                        // Closed without a word: a `* BYE` would first need a TLS handshake on
                        // port 993, and a client over the limit has connections to read one on.
                        logger.notice(
                            "connection refused",
                            metadata: [
                                "client": "\(ip)", "listener": "\(kind.rawValue)", "reason": "connection limit",
                                "open": "\(limiter.openConnections)",
                            ]
                        )
                        channel.close(promise: nil)
                        return Accepted.refused
                    }
                    channel.closeFuture.whenComplete { _ in limiter.release(ip: ip) }
                    let silence = IMAPSilenceLimit(
                        seconds: configuration.timeouts.beforeLogin,
                        loginWithin: configuration.timeouts.beforeLogin
                    )
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IMAPSilenceTimer(limit: silence))
                    try pipeline.addHandler(IMAPInboundTagger())
                    try pipeline.addHandler(IMAPOutboundHandler())
                    if implicitTLS, let tls = configuration.tls {
                        try IMAPOutboundHandler.addTLS(
                            to: pipeline,
                            provider: tls,
                            handshakeTimeout: configuration.timeouts.tlsHandshake
                        )
                    }
                    return Accepted.session(try IMAPConnection.Channel(wrappingChannelSynchronously: channel), silence)
                }
            }
        return try IMAPListener(
            serverChannel: channel,
            configuration: configuration,
            accounts: accounts,
            service: service,
            users: users,
            metrics: metrics,
            logger: logger
        )
    }

    public func close() async throws {
        try await self.serverChannel.channel.close()
    }

    public func run() async throws {
        let serverChannel = self.serverChannel
        try await withGracefulShutdownHandler {
            try await serverChannel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in inbound {
                        guard case .session(let channel, let silence) = accepted else { continue }
                        // Not on the event loop, as SMTP's sessions are: a FETCH or SEARCH over
                        // large messages is work that must not hold the loop's other connections.
                        group.addTask { await self.serve(channel, silence) }
                    }
                }
            }
        } onGracefulShutdown: {
            serverChannel.channel.close(promise: nil)
        }
    }

    private func serve(_ channel: IMAPConnection.Channel, _ silence: IMAPSilenceLimit) async {
        let number = Self.connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let connection = IMAPConnection(
            configuration: self.configuration,
            accounts: self.accounts,
            service: self.service,
            users: self.users,
            silence: silence,
            client: IMAPClient(id: "i" + String(number, radix: 36), remoteAddress: channel.channel.remoteAddress),
            metrics: self.metrics,
            logger: self.logger
        )
        let requestShutdown = connection.requestShutdown
        await withGracefulShutdownHandler {
            await connection.run(channel)
        } onGracefulShutdown: {
            // A session idles for up to 30 minutes: it is told BYE after the command under way,
            // not at the end of that (and cut off when the shutdown's time is up).
            requestShutdown()
        }
    }
}
