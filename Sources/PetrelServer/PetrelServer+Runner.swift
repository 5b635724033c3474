import Accounts
import DNSCore
import Delivery
import Logging
import MailCore
import MailStore
import NIOPosix
import PetrelConfiguration
import PetrelOperator
import SMTPClient
import SMTPCore

extension PetrelServer {
    /// The queue runner with its couriers: ours into the mailboxes, the rest by MX or the
    /// relay, and the DKIM keys that sign what leaves.
    static func makeRunner(
        configuration: Configuration,
        store: MessageStore,
        accounts: any AccountDirectory,
        resolver: any DNSResolving,
        ids: QueueIDGenerator,
        metrics: ServerMetrics,
        logger: Logger
    ) throws -> QueueRunner {
        let policy = configuration.delivery
        var settings = DeliverySettings(
            hostname: configuration.hostname,
            localDomains: Set(configuration.domains.map { IDNA.toASCII($0)?.lowercased() ?? $0.lowercased() })
        )
        settings.schedule = RetrySchedule(
            first: policy.retryFirst,
            ceiling: policy.retryMaximum,
            maximumAge: policy.maximumAge
        )
        settings.connections = policy.connections
        settings.connectionsPerDomain = policy.connectionsPerDomain
        settings.delayNotice = policy.delayNotice
        settings.hold = policy.hold
        var verifier = CertificateVerifier()
        if let relay = configuration.relay {
            settings.relay = DeliverySettings.Relay(
                host: relay.host,
                port: relay.port,
                credentials: relay.username.map {
                    ClientSession.Credentials(username: $0, password: relay.password ?? "")
                }
            )
            if let file = relay.caFile {
                do {
                    verifier = try CertificateVerifier(pemFile: file)
                } catch {
                    throw StartupError(description: "cannot read [relay] ca_file \(file): \(error)")
                }
            }
        }
        let client = try SMTPClient(
            settings: .init(
                heloName: configuration.hostname,
                replyTimeoutLimit: policy.replyTimeout.map { .seconds($0) },
                verifier: verifier
            ),
            group: MultiThreadedEventLoopGroup.singleton
        )
        let signers = SignerCache(keys: DKIMKeyStore(dataDirectory: configuration.dataDirectory), logger: logger)
        let couriers = QueueRunner.Couriers(
            local: LocalCourier(
                accounts: accounts,
                resolver: configuration.recipientResolver,
                queue: store.queueStore,
                mailboxes: store
            ),
            remote: RemoteCourier(
                router: Router(
                    resolver: resolver,
                    localNames: Set([DNSName(configuration.hostname)].compactMap { $0 })
                ),
                client: client,
                settings: settings,
                logger: logger
            )
        )
        return QueueRunner(
            queue: store.queueStore,
            couriers: couriers,
            settings: settings,
            signers: { signers.signers(for: $0) },
            makeID: { ids.next() },
            logger: logger,
            metrics: metrics.factory
        )
    }
}
