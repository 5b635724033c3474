import Accounts
import DNSClient
import DNSCore
import Delivery
import IMAPServer
import Logging
import MailIntake
import MailStore
import NIOCore
import NIOPosix
import NIOSupport
import PetrelConfiguration
import PetrelOperator
import PetrelSystem
import SMTPCore
import SMTPServer
import ServiceLifecycle

/// The composition root: builds every part from a `Configuration` and runs them as one
/// ServiceLifecycle `ServiceGroup`.
///
/// `start` does everything that can fail for operator reasons (lock the data directory, open the
/// account database, bind the ports) before any mail is accepted, so a mistake stops start-up
/// with one clear error. `run` serves until SIGTERM/SIGINT (or `shutdown()`), then stops
/// accepting, lets sessions finish for up to `timeouts.shutdown` seconds, and returns.
public final class PetrelServer: Sendable {
    public let configuration: Configuration
    public let listeners: [SMTPListener]
    public let imapListeners: [IMAPListener]
    public let accounts: AccountStore
    public let queue: OutboundQueue
    /// Delivers what the queue holds.
    public let runner: QueueRunner
    /// The stub resolver, shared by everything that needs DNS.
    public let dns: DNSClient
    public let metrics: ServerMetrics
    /// Where `[metrics] listen` serves, when it does.
    public let metricsAddress: SocketAddress?
    private let reloader: TLSReloader
    private let group: ServiceGroup
    private let threadPool: NIOThreadPool
    private let passwordChecks: PasswordChecks
    /// IMAP's side of the mailboxes, with threads of its own.
    private let mailAccounts: MailAccounts
    /// Held for the server's lifetime.
    private let lock: DataDirectoryLock
    private let logger: Logger

    /// The addresses the listeners of a kind are bound to (ports resolved when 0 was asked for).
    public func addresses(_ kind: ListenerKind) -> [SocketAddress] {
        self.listeners.filter { $0.kind == kind }.map(\.localAddress)
    }

    /// The addresses the IMAP listeners of a kind are bound to.
    public func imapAddresses(_ kind: IMAPServerConfiguration.Kind) -> [SocketAddress] {
        self.imapListeners.filter { $0.kind == kind }.map(\.localAddress)
    }

    private init(
        configuration: Configuration,
        listeners: [SMTPListener],
        imapListeners: [IMAPListener],
        accounts: AccountStore,
        queue: OutboundQueue,
        runner: QueueRunner,
        dns: DNSClient,
        metrics: ServerMetrics,
        metricsAddress: SocketAddress?,
        reloader: TLSReloader,
        group: ServiceGroup,
        threadPool: NIOThreadPool,
        passwordChecks: PasswordChecks,
        mailAccounts: MailAccounts,
        lock: DataDirectoryLock,
        logger: Logger
    ) {
        self.configuration = configuration
        self.listeners = listeners
        self.imapListeners = imapListeners
        self.accounts = accounts
        self.queue = queue
        self.runner = runner
        self.dns = dns
        self.metrics = metrics
        self.metricsAddress = metricsAddress
        self.reloader = reloader
        self.group = group
        self.threadPool = threadPool
        self.passwordChecks = passwordChecks
        self.mailAccounts = mailAccounts
        self.lock = lock
        self.logger = logger
    }

    /// Prepares and binds everything; nothing is served until `run`.
    /// - Parameters:
    ///   - handleSignals: install SIGTERM/SIGINT/SIGHUP handlers (off in tests).
    ///   - resolver: what SPF, DKIM, DMARC and MX routing look names up with; Petrel's own
    ///     resolver (`[dns]`) when nil. Tests give an in-memory zone.
    public static func start(
        configuration: Configuration,
        logger: Logger,
        handleSignals: Bool = true,
        resolver: (any DNSResolving)? = nil
    ) async throws -> PetrelServer {
        for deprecation in configuration.deprecations {
            logger.warning("configuration: \(deprecation)")
        }
        raiseOpenFileLimit(for: configuration.limits.connections, logger: logger)
        let threadPool = NIOThreadPool(numberOfThreads: 8)
        threadPool.start()
        let passwordChecks = PasswordChecks()
        var listeners: [SMTPListener] = []
        var imapListeners: [IMAPListener] = []
        var stopMailAccounts: @Sendable () async -> Void = {}
        do {
            try createDirectories(configuration.dataDirectory)
            let lock = try DataDirectoryLock(dataDirectory: configuration.dataDirectory)
            let store = try await Self.openStore(configuration, threadPool: threadPool, logger: logger)
            let tlsFiles = try ServerCertificate.files(for: configuration, logger: logger)
            let tls = TLSContextProvider(try TLSSetup.context(tlsFiles))
            let accounts = try AccountStore(path: configuration.files.accounts)
            // (after the account store, which narrows its own files)
            for finding in SetupDoctor.checkPermissions(configuration) where finding.status != .ok {
                logger.warning(
                    "\(finding.subject): \(finding.found)",
                    metadata: ["fix": "\(finding.expected)"]
                )
            }
            let dns = configuration.makeDNSClient()
            let ids = QueueIDGenerator()
            let metrics = ServerMetrics()
            let runner = try Self.makeRunner(
                configuration: configuration,
                store: store,
                accounts: accounts,
                resolver: resolver ?? dns,
                ids: ids,
                metrics: metrics,
                logger: logger
            )
            let mailAccounts = MailAccounts(store: store, junkFolder: configuration.inbound.junkFolder)
            stopMailAccounts = { await mailAccounts.shutdown() }
            let receiver = try MailReceiver(
                accounts: accounts,
                resolver: configuration.recipientResolver,
                store: store,
                hostname: configuration.hostname,
                ids: ids,
                queued: { runner.enqueued($0) },
                failures: LoginFailures(policy: configuration.loginFailures),
                checks: passwordChecks,
                inbound: InboundAuthentication(
                    policy: configuration.inbound,
                    resolver: resolver ?? dns,
                    hostname: configuration.hostname
                ),
                quota: configuration.quota,
                metrics: metrics.intake,
                logger: logger
            )
            try await Self.bindListeners(configuration, receiver: receiver, tls: tls, logger: logger, into: &listeners)
            try await Self.bindIMAPListeners(
                configuration,
                accounts: mailAccounts,
                receiver: receiver,
                tls: tls,
                metrics: IMAPMetrics(factory: metrics.factory),
                logger: logger,
                into: &imapListeners
            )
            let reloader = TLSReloader(files: tlsFiles, provider: tls, logger: logger)
            var services = listeners.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            services += imapListeners.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            services.append(.init(service: runner))
            var metricsAddress: SocketAddress?
            if let address = configuration.metricsListen {
                let endpoint: MetricsEndpoint
                do {
                    endpoint = try await MetricsEndpoint.bind(host: address.host, port: address.port) {
                        metrics.render(queue: runner, dns: dns, now: Int64(time(nil)))
                    }
                } catch {
                    let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
                    throw StartupError(description: "cannot listen on \(address) (metrics): \(reason)")
                }
                metricsAddress = endpoint.localAddress
                services.append(.init(service: endpoint))
            }
            if handleSignals { services.append(.init(service: reloader)) }
            var groupConfiguration = ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                logger: logger
            )
            groupConfiguration.maximumGracefulShutdownDuration = .seconds(configuration.timeouts.shutdown)
            groupConfiguration.maximumCancellationDuration = .seconds(5)
            return PetrelServer(
                configuration: configuration,
                listeners: listeners,
                imapListeners: imapListeners,
                accounts: accounts,
                queue: store.queue,
                runner: runner,
                dns: dns,
                metrics: metrics,
                metricsAddress: metricsAddress,
                reloader: reloader,
                group: ServiceGroup(configuration: groupConfiguration),
                threadPool: threadPool,
                passwordChecks: passwordChecks,
                mailAccounts: mailAccounts,
                lock: lock,
                logger: logger
            )
        } catch {
            for listener in listeners { try? await listener.close() }
            for listener in imapListeners { try? await listener.close() }
            await stopMailAccounts()
            try? await threadPool.shutdownGracefully()
            await passwordChecks.shutdown()
            throw error
        }
    }

    /// The message store, prepared: what an earlier run left unfinished is removed, and
    /// unreadable queue entries are set aside (both said in the log).
    static func openStore(
        _ configuration: Configuration,
        threadPool: NIOThreadPool,
        logger: Logger
    ) async throws -> MessageStore {
        let store = MessageStore(
            dataDirectory: configuration.dataDirectory,
            hostname: configuration.hostname,
            threadPool: threadPool
        )
        let preparation = try await store.prepare()
        if preparation.removedIncoming > 0 || preparation.queue.removedUnfinished > 0 {
            logger.notice(
                "removed unfinished messages of an earlier run",
                metadata: [
                    "incoming": "\(preparation.removedIncoming)", "queue": "\(preparation.queue.removedUnfinished)",
                ]
            )
        }
        if preparation.queue.setAsideCorrupt > 0 {
            logger.error(
                "unreadable queue entries set aside",
                metadata: [
                    "count": "\(preparation.queue.setAsideCorrupt)",
                    "directory": "\(store.queue.directory)/corrupt",
                ]
            )
        }
        return store
    }

    /// Binds every configured listener, appending each to `listeners` as it is bound, so that
    /// the caller can close those already bound when a later one fails.
    static func bindListeners(
        _ configuration: Configuration,
        receiver: MailReceiver,
        tls: TLSContextProvider,
        logger: Logger,
        into listeners: inout [SMTPListener]
    ) async throws {
        let limits = SMTPLimits(
            messageSize: configuration.limits.messageSize,
            recipients: configuration.limits.recipients,
            errors: configuration.limits.errors
        )
        let limiter = ConnectionLimiter(
            limits: .init(total: configuration.limits.connections, perIP: configuration.limits.connectionsPerIP)
        )
        let listen = configuration.listen
        for (kind, addresses) in [
            (ListenerKind.smtp, listen.smtp), (.submission, listen.submission), (.submissions, listen.submissions),
        ] {
            let serverConfiguration = SMTPServerConfiguration(
                hostname: configuration.hostname,
                kind: kind,
                limits: limits,
                connectionLimits: limiter.limits,
                timeouts: .init(
                    command: .seconds(Int64(configuration.timeouts.command)),
                    data: .seconds(Int64(configuration.timeouts.data)),
                    dataTotal: .seconds(Int64(configuration.timeouts.dataTotal)),
                    tlsHandshake: .seconds(Int64(configuration.timeouts.tlsHandshake))
                ),
                tls: tls,
                authMechanisms: SASLMechanism.allCases.map(\.rawValue)
            )
            for address in addresses {
                do {
                    listeners.append(
                        try await SMTPListener.bind(
                            host: address.host,
                            port: address.port,
                            configuration: serverConfiguration,
                            receiver: receiver,
                            limiter: limiter,
                            logger: logger
                        )
                    )
                } catch {
                    let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
                    throw StartupError(description: "cannot listen on \(address) (\(kind.rawValue)): \(reason)")
                }
            }
        }
    }

    /// Serves until shut down.
    public func run() async throws {
        for listener in self.listeners {
            self.logger.info(
                "listening",
                metadata: ["protocol": "\(listener.kind.rawValue)", "address": "\(listener.localAddress.logText)"]
            )
        }
        for listener in self.imapListeners {
            self.logger.info(
                "listening",
                metadata: ["protocol": "\(listener.kind.rawValue)", "address": "\(listener.localAddress.logText)"]
            )
        }
        if let address = self.metricsAddress {
            self.logger.info("metrics", metadata: ["address": "http://\(address.logText)/metrics"])
        }
        let resolvers = self.dns.configuration.servers.map(\.logText).joined(separator: ",")
        if resolvers.isEmpty {
            self.logger.warning("no DNS resolvers: set [dns] servers, or nameserver lines in /etc/resolv.conf")
        } else {
            self.logger.info("dns", metadata: ["resolvers": "\(resolvers)"])
        }
        self.logger.info(
            "receiving mail",
            metadata: [
                "domains": "\(self.configuration.domains.joined(separator: ","))",
                "maildirs": "\(self.configuration.files.mail)/<address>/new/",
            ]
        )
        if let relay = self.configuration.relay {
            self.logger.info("delivering mail", metadata: ["via": "relay \(relay.host):\(relay.port)"])
        } else {
            self.logger.info("delivering mail", metadata: ["via": "MX lookup, port 25"])
        }
        do {
            try await self.group.run()
        } catch is CancellationError {
            // The group is cancelled when a shutdown outlasts timeouts.shutdown (or when whoever
            // runs the server cancels its task): still a stop, not a failure.
            // What was cut off is safe: a message not yet answered is the client's to resend, a
            // delivery not yet recorded stays queued and is tried again at the next start.
            self.logger.notice(
                "shutdown limit reached: sessions and deliveries still under way were cut off",
                metadata: ["limit": "\(self.configuration.timeouts.shutdown)s"]
            )
        } catch {
            try? await self.threadPool.shutdownGracefully()
            await self.passwordChecks.shutdown()
            await self.mailAccounts.shutdown()
            throw error
        }
        try? await self.threadPool.shutdownGracefully()
        await self.passwordChecks.shutdown()
        await self.mailAccounts.shutdown()
        self.logger.info("stopped")
    }

    /// Reloads the TLS certificate and key, as SIGHUP does.
    public func reloadTLS() {
        self.reloader.reload()
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    public func shutdown() async {
        await self.group.triggerGracefulShutdown()
    }
}

public struct StartupError: Error, CustomStringConvertible {
    public let description: String
}

/// Raises the soft limit on open files to the hard one (as Go's runtime and nginx's
/// worker_rlimit_nofile do): every connection is a descriptor, and the usual soft limit of 1024
/// would refuse connections long before `limits.connections`. Says so when even the hard limit
/// is too low for that setting.
func raiseOpenFileLimit(for connections: Int, logger: Logger) {
    #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else { return }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(resource, &raised) == 0 { limit = raised }
    }
    // Connections, plus the files, sockets and databases of the server itself.
    let needed = UInt64(connections) + 256
    if UInt64(limit.rlim_cur) < needed {
        logger.warning(
            "the open file limit is lower than limits.connections needs; raise it (ulimit -n, LimitNOFILE=)",
            metadata: ["open_files": "\(limit.rlim_cur)", "needed": "\(needed)"]
        )
    }
}
