import IMAPCore
import IMAPServer
import Logging
import MailIntake
import MailStore
import NIOCore
import NIOSupport
import PetrelConfiguration
import PetrelSystem

extension PetrelServer {
    /// Binds the `[listen] imap` and `imaps` listeners, appending each as it is bound (so the
    /// caller can close them when a later one fails). Logins go through the same checks and
    /// failure limits as submission (`IMAPLogins`); IMAP has its own per-client connection limit.
    static func bindIMAPListeners(
        _ configuration: Configuration,
        accounts: MailAccounts,
        receiver: MailReceiver,
        tls: TLSContextProvider,
        metrics: IMAPMetrics,
        logger: Logger,
        into listeners: inout [IMAPListener]
    ) async throws {
        let limiter = ConnectionLimiter(
            limits: .init(total: configuration.limits.connections, perIP: configuration.imap.connectionsPerIP)
        )
        let users = IMAPUserSessions()
        let service = IMAPLogins(receiver: receiver)
        for (kind, addresses) in [
            (IMAPServerConfiguration.Kind.imap, configuration.listen.imap), (.imaps, configuration.listen.imaps),
        ] {
            let serverConfiguration = IMAPServerConfiguration(
                kind: kind,
                appendLimit: UInt64(configuration.imap.appendLimit ?? configuration.limits.messageSize),
                timeouts: .init(
                    beforeLogin: Int64(configuration.imap.loginTimeout),
                    idle: Int64(configuration.imap.idleTimeout),
                    tlsHandshake: Int64(configuration.timeouts.tlsHandshake)
                ),
                tls: tls,
                sessionsPerUser: configuration.imap.sessionsPerUser,
                maximumErrors: configuration.limits.errors
            )
            for address in addresses {
                do {
                    listeners.append(
                        try await IMAPListener.bind(
                            host: address.host,
                            port: address.port,
                            configuration: serverConfiguration,
                            accounts: accounts,
                            service: service,
                            limiter: limiter,
                            users: users,
                            metrics: metrics,
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
}
