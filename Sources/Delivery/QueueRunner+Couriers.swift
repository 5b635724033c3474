import DNSCore
import MailStore
import NIOCore
import SMTPClient
import SMTPCore

// The couriers: one transaction's recipients taken to their destination, our own mailboxes
// through `LocalDelivery`, other domains through their MX hosts (or the relay) one host after
// another until one takes a position on them.
extension QueueRunner {
    struct GroupResult: Sendable {
        var indices: [Int]
        var results: [ClientSession.RecipientResult]
        var remoteMTA: String?
    }

    func deliver(
        _ entry: QueueEntry,
        to destination: Destination,
        indices: [Int],
        message: QueuedMessage
    ) async -> GroupResult {
        let addresses = indices.map { entry.recipients[$0].address }
        let route: Router.Route
        switch destination {
        case .local:
            let results = await self.local.deliver(id: entry.id, to: addresses)
            self.log(entry, indices: indices, results: results, via: "local", tls: nil)
            return GroupResult(indices: indices, results: results, remoteMTA: nil)
        case .relay:
            route = await self.router.route(relayHost: self.settings.relay?.host ?? "")
        case .addressLiteral:
            route = .bounce(status: "5.1.2", reason: "address literals are not delivered to")
        case .domain(let domain):
            if let name = DNSName(domain) {
                var random = SystemRandomNumberGenerator()
                route = await self.router.route(name, random: &random)
            } else {
                route = .bounce(status: "5.1.2", reason: "\(domain) is not a valid domain name")
            }
        }
        switch route {
        case .bounce(let status, let reason):
            let reply = SMTPReply(550, DeliveryLog.enhancedCode(status), reason)
            let results = indices.map { _ in ClientSession.RecipientResult.failed(reply) }
            self.log(entry, indices: indices, results: results, via: nil, tls: nil)
            return GroupResult(indices: indices, results: results, remoteMTA: nil)
        case .deferred(let reason):
            let reply = SMTPReply(451, EnhancedStatusCode(4, 4, 3), reason)
            let results = indices.map { _ in ClientSession.RecipientResult.deferred(reply) }
            self.log(entry, indices: indices, results: results, via: nil, tls: nil)
            return GroupResult(indices: indices, results: results, remoteMTA: nil)
        case .hosts(let hosts):
            return await self.deliver(entry, to: destination, hosts: hosts, indices: indices, message: message)
        }
    }

    /// Tries the hosts in order, each address in order, until one takes a position on the
    /// recipients (RFC 5321 §5.1); a host that cannot be reached or refuses the session
    /// passes the turn to the next.
    func deliver(
        _ entry: QueueEntry,
        to destination: Destination,
        hosts: [Router.Host],
        indices: [Int],
        message: QueuedMessage
    ) async -> GroupResult {
        // All of them go to each host in turn: the next host is tried only when this one took
        // no position on any recipient.
        let pending = indices
        var results: [Int: ClientSession.RecipientResult] = [:]
        var remoteMTA: String?
        var tries = 0
        let relay = self.settings.relay
        hostLoop: for host in hosts {
            let hostname = String(host.name.description.dropLast())
            for address in host.addresses {
                guard tries < self.settings.addressesPerAttempt, !pending.isEmpty else { break hostLoop }
                tries += 1
                guard let socketAddress = try? SocketAddress(ipAddress: address.description, port: relay?.port ?? 25)
                else { continue }
                var target = SMTPClient.Target(
                    hostname: hostname,
                    address: socketAddress,
                    tlsPolicy: relay == nil ? .opportunistic : .required,
                    implicitTLS: relay?.port == 465,
                    credentials: relay?.credentials
                )
                let envelope = ClientSession.Envelope(
                    sender: entry.sender,
                    recipients: pending.map { entry.recipients[$0].address },
                    size: message.size,
                    eightBit: entry.body == "8BITMIME",
                    smtpUTF8: entry.smtpUTF8
                )
                await self.connections.acquire()
                await self.destinations.acquire(destination.connectionKey)
                var attempt = await self.client.deliver(envelope, message: message, to: target)
                if let failure = attempt.tlsFailed, target.tlsPolicy == .opportunistic {
                    // RFC 7435: a server whose TLS does not work still gets the mail, in plaintext.
                    self.logger.notice(
                        "TLS failed, trying again without",
                        metadata: ["id": "\(entry.id)", "relay": "\(hostname)[\(address)]", "error": "\(failure)"]
                    )
                    target.tlsPolicy = .never
                    attempt = await self.client.deliver(envelope, message: message, to: target)
                }
                await self.destinations.release(destination.connectionKey)
                await self.connections.release()
                let outcomes = attempt.outcome.recipients.map {
                    $0 ?? .deferred(SMTPReply(451, EnhancedStatusCode(4, 4, 2), "no result"))
                }
                if attempt.connected { remoteMTA = hostname }
                self.log(entry, indices: pending, results: outcomes, via: "\(hostname)[\(address)]", tls: attempt.tls)
                for (index, outcome) in zip(pending, outcomes) { results[index] = outcome }
                let allDeferred = outcomes.allSatisfy { if case .deferred = $0 { return true } else { return false } }
                if attempt.connected, attempt.outcome.recipientsAnswered || !allDeferred { break hostLoop }
            }
        }
        return GroupResult(
            indices: indices,
            results: indices.map {
                results[$0]
                    ?? .deferred(SMTPReply(451, EnhancedStatusCode(4, 4, 1), "no MX host of \(destination) answered"))
            },
            remoteMTA: remoteMTA
        )
    }
}
