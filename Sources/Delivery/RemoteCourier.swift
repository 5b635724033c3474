import DNSCore
import Logging
import MailCore
import NIOCore
import SMTPClient
import SMTPCore

/// Delivers to other domains: their MX hosts one after another (RFC 5321 §5.1), or the relay
/// when one is configured, within the connection limits (`delivery.connections`,
/// `delivery.connections_per_domain`).
public struct RemoteCourier: Courier {
    let router: Router
    let client: SMTPClient
    let settings: DeliverySettings
    let logger: Logger
    let connections: AsyncSemaphore
    /// `delivery.connections_per_domain`, counted per destination (each domain, the relay).
    let destinations: SemaphoreTable<Destination>

    public init(router: Router, client: SMTPClient, settings: DeliverySettings, logger: Logger) {
        self.router = router
        self.client = client
        self.settings = settings
        self.logger = logger
        self.connections = AsyncSemaphore(settings.connections)
        self.destinations = SemaphoreTable(permits: settings.connectionsPerDomain)
    }

    public func deliver(_ parcel: Parcel) async -> CourierReport {
        let route: Router.Route
        switch parcel.destination {
        case .local:
            route = .bounce(status: EnhancedStatusCode(5, 3, 5), reason: "local mail is not delivered over SMTP")
        case .relay:
            route = await self.router.route(relayHost: self.settings.relay?.host ?? "")
        case .addressLiteral:
            route = .bounce(status: EnhancedStatusCode(5, 1, 2), reason: "address literals are not delivered to")
        case .domain(let domain):
            if let name = DNSName(domain) {
                var random = SystemRandomNumberGenerator()
                route = await self.router.route(name, random: &random)
            } else {
                route = .bounce(status: EnhancedStatusCode(5, 1, 2), reason: "\(domain) is not a valid domain name")
            }
        }
        switch route {
        case .bounce(let status, let reason):
            let reply = SMTPReply(550, status, reason)
            return CourierReport(via: nil, results: parcel.recipients.map { _ in .failed(reply) })
        case .deferred(let reason):
            let reply = SMTPReply(451, EnhancedStatusCode(4, 4, 3), reason)
            return CourierReport(via: nil, results: parcel.recipients.map { _ in .deferred(reply) })
        case .hosts(let hosts):
            return await self.deliver(parcel, hosts: hosts)
        }
    }

    /// Tries the hosts in order, each address in order, until one takes a position on the
    /// recipients (RFC 5321 §5.1); a host that cannot be reached or refuses the session passes
    /// the turn to the next. All recipients go to each host in turn: the next host is tried
    /// only when this one took no position on any of them.
    func deliver(_ parcel: Parcel, hosts: [Router.Host]) async -> CourierReport {
        var tries: [CourierReport.Try] = []
        var results: [DeliveryResult]?
        var remoteMTA: String?
        let relay = self.settings.relay
        let envelope = ClientSession.Envelope(
            sender: parcel.sender,
            recipients: parcel.recipients,
            size: parcel.size,
            eightBit: parcel.eightBit,
            smtpUTF8: parcel.smtpUTF8
        )
        hostLoop: for host in hosts {
            let hostname = String(host.name.description.dropLast())
            for address in host.addresses {
                guard tries.count < self.settings.addressesPerAttempt else { break hostLoop }
                guard let socketAddress = try? SocketAddress(ipAddress: address.description, port: relay?.port ?? 25)
                else { continue }
                var target = SMTPClient.Target(
                    hostname: hostname,
                    address: socketAddress,
                    tlsPolicy: relay == nil ? .opportunistic : .required,
                    implicitTLS: relay?.port == 465,
                    credentials: relay?.credentials
                )
                await self.connections.acquire()
                await self.destinations.acquire(parcel.destination)
                var attempt = await self.client.deliver(envelope, message: parcel.message, to: target)
                if let failure = attempt.tlsFailed, target.tlsPolicy == .opportunistic {
                    // RFC 7435: a server whose TLS does not work still gets the mail, in plaintext.
                    self.logger.notice(
                        "TLS failed, trying again without",
                        metadata: ["id": "\(parcel.id)", "relay": "\(hostname)[\(address)]", "error": "\(failure)"]
                    )
                    target.tlsPolicy = .never
                    attempt = await self.client.deliver(envelope, message: parcel.message, to: target)
                }
                await self.destinations.release(parcel.destination)
                await self.connections.release()
                let outcomes = attempt.outcome.recipients.map { result -> DeliveryResult in
                    switch result {
                    case .delivered(let reply): return .delivered(reply)
                    case .deferred(let reply): return .deferred(reply)
                    case .failed(let reply): return .failed(reply)
                    case nil: return .deferred(SMTPReply(451, EnhancedStatusCode(4, 4, 2), "no result"))
                    }
                }
                if attempt.connected { remoteMTA = hostname }
                tries.append(CourierReport.Try(via: "\(hostname)[\(address)]", tls: attempt.tls, results: outcomes))
                results = outcomes
                if attempt.connected, attempt.outcome.recipientsAnswered || !outcomes.allSatisfy(\.isDeferred) {
                    break hostLoop
                }
            }
        }
        let nobody = SMTPReply(
            451,
            EnhancedStatusCode(4, 4, 1),
            parcel.destination == .relay ? "the relay did not answer" : "no MX host of \(parcel.destination) answered"
        )
        return CourierReport(
            tries: tries,
            results: results ?? parcel.recipients.map { _ in .deferred(nobody) },
            remoteMTA: remoteMTA
        )
    }
}
