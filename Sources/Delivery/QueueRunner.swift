import DNSCore
import Logging
import MailAuth
import MailCore
import MailStore
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPClient
import SMTPCore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Delivery into our own mailboxes, for queued messages with local recipients (`petrel sendmail`,
/// reports to our own users).
public protocol LocalDelivery: Sendable {
    /// Delivers the queued message `id` to these addresses of our domains; one result each.
    func deliver(id: String, to recipients: [String]) async -> [ClientSession.RecipientResult]
}

public struct DeliverySettings: Sendable {
    /// Our name: in EHLO, as the Reporting-MTA, and the MAILER-DAEMON's domain.
    public var hostname: String
    /// Domains we receive for (lower case, ASCII): their recipients are delivered locally and
    /// their mail is signed.
    public var localDomains: Set<String>
    public var schedule = RetrySchedule()
    /// Connections open at once, in all.
    public var connections = 20
    /// Connections open at once to one destination domain (or the relay).
    public var connectionsPerDomain = 4
    /// Seconds after which the sender is told that a message is still being retried; nil: never.
    public var delayNotice: Int?
    /// Everything remote goes to this host, TLS required.
    public var relay: Relay?
    /// Deliver nothing: the queue only fills (requests from `petrel queue` are still handled).
    public var hold = false
    /// MX addresses tried per destination and attempt (Postfix's smtp_mx_address_limit).
    public var addressesPerAttempt = 5

    public struct Relay: Sendable {
        public var host: String
        public var port: Int
        public var credentials: ClientSession.Credentials?

        public init(host: String, port: Int, credentials: ClientSession.Credentials?) {
            self.host = host
            self.port = port
            self.credentials = credentials
        }
    }

    public init(hostname: String, localDomains: Set<String>) {
        self.hostname = hostname
        self.localDomains = localDomains
    }
}

/// The queue runner: picks due messages, groups their recipients by destination, delivers each
/// group (locally, to the relay, or to the domain's MX hosts) within the connection limits,
/// records every recipient's result durably as soon as it is known, retries what was deferred,
/// and reports failures to the sender.
///
/// A recipient recorded as delivered is never sent again: the envelope is rewritten (synced)
/// after each destination's result, so a crash repeats at most the deliveries in flight, and a
/// remote server that had not said 250 yet has not taken the message either.
public final class QueueRunner: Service, Sendable {
    let queue: OutboundQueue
    let pickup: String
    let router: Router
    let client: SMTPClient
    let local: any LocalDelivery
    let settings: DeliverySettings
    /// The keys that sign mail from one of our domains (the domain is given).
    let signers: @Sendable (String) -> [DKIMSigner]
    let threadPool: NIOThreadPool
    let makeID: @Sendable () -> String
    /// Unix seconds.
    let clock: @Sendable () -> Int64
    let logger: Logger
    /// Where `petrel_deliveries_total` goes (the server's Prometheus registry).
    let metrics: any MetricsFactory
    private let state = NIOLockedValueBox(State())
    private let wakeups: AsyncStream<Void>
    private let wakeup: AsyncStream<Void>.Continuation
    private let connections: AsyncSemaphore
    private let destinations: SemaphoreTable

    struct State {
        /// When each message is next due (Unix seconds).
        var due: [String: Int64] = [:]
        var inFlight: Set<String> = []
        var stopping = false
        /// Arrival times, for the age of the oldest message.
        var arrivals: [String: Int64] = [:]
    }

    public init(
        queue: OutboundQueue,
        pickup: String,
        router: Router,
        client: SMTPClient,
        local: any LocalDelivery,
        settings: DeliverySettings,
        signers: @escaping @Sendable (String) -> [DKIMSigner],
        threadPool: NIOThreadPool,
        makeID: @escaping @Sendable () -> String,
        clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) },
        logger: Logger,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance
    ) {
        self.metrics = metrics
        self.queue = queue
        self.pickup = pickup
        self.router = router
        self.client = client
        self.local = local
        self.settings = settings
        self.signers = signers
        self.threadPool = threadPool
        self.makeID = makeID
        self.clock = clock
        self.logger = logger
        (self.wakeups, self.wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.connections = AsyncSemaphore(settings.connections)
        self.destinations = SemaphoreTable(permits: settings.connectionsPerDomain)
    }

    /// A message was just queued: try it now.
    public func enqueued(_ id: String) {
        self.state.withLockedValue { $0.due[id] = 0 }
        self.wakeup.yield()
    }

    /// Messages being delivered right now (tests, logs).
    public var inFlight: Int { self.state.withLockedValue { $0.inFlight.count } }

    /// Messages in the queue, and when the oldest arrived (Unix seconds), for the metrics.
    public var size: (messages: Int, oldestArrival: Int64?) {
        self.state.withLockedValue { ($0.due.count, $0.arrivals.values.min()) }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.tick() }
                await self.load()
                if self.settings.hold { self.logger.notice("delivery on hold: messages stay in the queue") }
                for await _ in self.wakeups {
                    if self.state.withLockedValue({ $0.stopping }) { break }
                    await self.handleRequests()
                    for id in self.takeDue() {
                        group.addTask {
                            await self.process(id)
                            self.state.withLockedValue { _ = $0.inFlight.remove(id) }
                            self.wakeup.yield()
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            // Deliveries in flight finish (or are cut off by the shutdown limit, and retried).
            self.state.withLockedValue { $0.stopping = true }
            self.wakeup.finish()
        }
    }

    /// Once a second: requests from `petrel queue` and `petrel sendmail`, and messages come due.
    private func tick() async {
        while !self.state.withLockedValue({ $0.stopping }), !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            self.wakeup.yield()
        }
    }

    private func load() async {
        let entries = (try? await self.threadPool.runIfActive { try self.queue.entries() }) ?? []
        self.state.withLockedValue { state in
            for entry in entries {
                state.due[entry.id] = Self.nextDue(entry) ?? 0
                state.arrivals[entry.id] = entry.createdAt
            }
        }
        if !entries.isEmpty { self.logger.info("queue loaded", metadata: ["messages": "\(entries.count)"]) }
        self.wakeup.yield()
    }

    /// Most messages handled at once; the connection limits apply inside.
    private var maximumInFlight: Int { max(self.settings.connections * 4, 16) }

    private func takeDue() -> [String] {
        guard !self.settings.hold else { return [] }
        let now = self.clock()
        return self.state.withLockedValue { state in
            let room = self.maximumInFlight - state.inFlight.count
            guard room > 0 else { return [] }
            let due = state.due.filter { $0.value <= now && !state.inFlight.contains($0.key) }
                .sorted { ($0.value, $0.key) < ($1.value, $1.key) }
                .prefix(room)
                .map(\.key)
            for id in due { state.inFlight.insert(id) }
            return due
        }
    }

    /// When the entry next needs work: a pending recipient's next attempt, or now when a
    /// failure is still to be reported; nil when nothing is left.
    static func nextDue(_ entry: QueueEntry) -> Int64? {
        var due: Int64?
        for recipient in entry.recipients {
            switch recipient.state {
            case .pending: due = min(due ?? .max, recipient.nextAttempt ?? 0)
            case .failed where recipient.notified == false: due = 0
            case .failed, .delivered: break
            }
        }
        return due
    }

    // MARK: - One message

    /// Everything due for one message: delivery attempts, then reports, then its removal when
    /// nothing is left to do.
    func process(_ id: String) async {
        let now = self.clock()
        var entry: QueueEntry
        do {
            entry = try await self.threadPool.runIfActive { try self.queue.entry(id) }
        } catch {
            self.forget(id)  // deleted meanwhile
            return
        }
        self.state.withLockedValue { $0.arrivals[id] = entry.createdAt }
        var message: QueuedMessage?
        let due = entry.recipients.indices.filter {
            entry.recipients[$0].state == .pending && (entry.recipients[$0].nextAttempt ?? 0) <= now
        }
        if !due.isEmpty {
            let remote = due.contains { !self.isLocal(entry.recipients[$0].address) }
            do {
                message = try await QueuedMessage.open(
                    path: self.queue.messagePath(id),
                    threadPool: self.threadPool,
                    timestamp: Int(now),
                    signers: remote ? self.signers(for:) : { _ in [] }
                )
            } catch {
                self.logger.error("cannot read queued message", metadata: ["id": "\(id)", "error": "\(error)"])
            }
            if let message {
                await self.deliver(&entry, indices: due, message: message, now: now)
            } else {
                // Unreadable (a signing failure or I/O): try again later, as for a remote 4xx.
                for index in due {
                    self.settle(
                        &entry.recipients[index],
                        .deferred(SMTPReply(451, EnhancedStatusCode(4, 3, 0), "cannot read the queued message")),
                        remoteMTA: nil,
                        entry: entry,
                        now: now
                    )
                }
                await self.save(entry)
            }
        }
        await self.report(&entry, message: message, now: now)
        let next = Self.nextDue(entry)
        if next == nil {
            do {
                try await self.threadPool.runIfActive { try self.queue.remove(id) }
                self.logger.info("removed", metadata: ["id": "\(id)", "reason": "done"])
            } catch {
                self.logger.error("cannot remove from queue", metadata: ["id": "\(id)", "error": "\(error)"])
            }
        }
        if let next {
            self.state.withLockedValue { $0.due[id] = next }
        } else {
            self.forget(id)
        }
    }

    private func forget(_ id: String) {
        self.state.withLockedValue { state in
            state.due.removeValue(forKey: id)
            state.arrivals.removeValue(forKey: id)
        }
    }

    /// The keys that sign a message: those of our domain (or the domain its subdomain belongs
    /// to) when the message speaks only for that domain: one From field, read as `AuthorFields`
    /// reads it, every address in it there. Submission makes sure a user may use those
    /// addresses; `petrel sendmail` is trusted as the server's own local user, as Postfix's is.
    /// A message whose From names several domains, or none of ours, is not signed at all.
    func signers(for header: HeaderSection) -> [DKIMSigner] {
        let from = header.fields(named: "From")
        guard from.count == 1, let addresses = AuthorFields.addresses(in: from[0].value) else { return [] }
        var signing: String?
        for address in addresses {
            guard let domain = AddressList.domain(of: address),
                let ours = self.settings.localDomains.filter({ domain == $0 || domain.hasSuffix("." + $0) })
                    .max(by: { $0.count < $1.count }),
                signing == nil || signing == ours
            else { return [] }
            signing = ours
        }
        return signing.map(self.signers) ?? []
    }

    func isLocal(_ address: String) -> Bool {
        guard let domain = AddressList.domain(of: address) else { return false }
        return self.settings.localDomains.contains(domain)
    }

    /// Groups the due recipients by destination and delivers the groups side by side, recording
    /// each group's results as they come.
    private func deliver(_ entry: inout QueueEntry, indices: [Int], message: QueuedMessage, now: Int64) async {
        if HopCount.isLooping(message.header) {
            let reply = SMTPReply(
                554,
                EnhancedStatusCode(5, 4, 6),
                "mail loop: the message has passed more than \(HopCount.maximum) hosts"
            )
            for index in indices {
                self.settle(&entry.recipients[index], .failed(reply), remoteMTA: nil, entry: entry, now: now)
            }
            self.log(entry, indices: indices, results: indices.map { _ in .failed(reply) }, via: nil, tls: nil)
            await self.save(entry)
            return
        }
        var groups: [String: [Int]] = [:]
        for index in indices {
            let address = entry.recipients[index].address
            let key: String
            if self.isLocal(address) {
                key = ""
            } else if self.settings.relay != nil {
                key = "[relay]"
            } else {
                key = AddressList.domain(of: address) ?? "[literal]"
            }
            groups[key, default: []].append(index)
        }
        let snapshot = entry
        await withTaskGroup(of: GroupResult.self) { group in
            for (destination, members) in groups {
                // Servers may take as few as 100 recipients a transaction (RFC 5321 §4.5.3.1.8).
                for start in stride(from: 0, to: members.count, by: Self.recipientsPerTransaction) {
                    let chunk = Array(members[start..<min(start + Self.recipientsPerTransaction, members.count)])
                    group.addTask {
                        await self.deliver(snapshot, to: destination, indices: chunk, message: message)
                    }
                }
            }
            for await result in group {
                for (index, outcome) in zip(result.indices, result.results) {
                    self.settle(&entry.recipients[index], outcome, remoteMTA: result.remoteMTA, entry: entry, now: now)
                }
                await self.save(entry)
            }
        }
    }

    static let recipientsPerTransaction = 50

    struct GroupResult: Sendable {
        var indices: [Int]
        var results: [ClientSession.RecipientResult]
        var remoteMTA: String?
    }

    private func deliver(
        _ entry: QueueEntry,
        to destination: String,
        indices: [Int],
        message: QueuedMessage
    ) async -> GroupResult {
        let addresses = indices.map { entry.recipients[$0].address }
        if destination.isEmpty {
            let results = await self.local.deliver(id: entry.id, to: addresses)
            self.log(entry, indices: indices, results: results, via: "local", tls: nil)
            return GroupResult(indices: indices, results: results, remoteMTA: nil)
        }
        let route: Router.Route
        if let relay = self.settings.relay {
            route = await self.router.route(relayHost: relay.host)
        } else if destination == "[literal]" {
            route = .bounce(status: "5.1.2", reason: "address literals are not delivered to")
        } else if let name = DNSName(destination) {
            var random = SystemRandomNumberGenerator()
            route = await self.router.route(name, random: &random)
        } else {
            route = .bounce(status: "5.1.2", reason: "\(destination) is not a valid domain name")
        }
        switch route {
        case .bounce(let status, let reason):
            let reply = SMTPReply(550, Self.enhancedCode(status), reason)
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
    private func deliver(
        _ entry: QueueEntry,
        to destination: String,
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
                await self.destinations.acquire(destination)
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
                await self.destinations.release(destination)
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

    /// Records one result: delivered and failed are final; deferred waits for the next attempt,
    /// unless the message is too old to keep trying.
    func settle(
        _ recipient: inout QueueEntry.Recipient,
        _ result: ClientSession.RecipientResult,
        remoteMTA: String?,
        entry: QueueEntry,
        now: Int64
    ) {
        recipient.attempts += 1
        recipient.lastAttempt = now
        recipient.remoteMTA = remoteMTA
        switch result {
        case .delivered(let reply):
            recipient.state = .delivered
            recipient.status = reply.enhancedCode?.description ?? "2.0.0"
            recipient.lastError = nil
            recipient.nextAttempt = nil
        case .failed(let reply):
            recipient.state = .failed
            recipient.status = reply.enhancedCode?.description ?? "5.0.0"
            recipient.lastError = Self.text(reply)
            recipient.nextAttempt = nil
            recipient.notified = entry.sender.isEmpty  // nobody to tell about a report's failure
        case .deferred(let reply):
            recipient.status = reply.enhancedCode?.description ?? "4.0.0"
            recipient.lastError = Self.text(reply)
            if let next = self.settings.schedule.nextAttempt(
                now: Int(now),
                arrival: Int(entry.createdAt),
                attempts: recipient.attempts
            ) {
                recipient.nextAttempt = Int64(next)
            } else {
                recipient.state = .failed
                recipient.status = "4.4.7"
                recipient.lastError = "gave up after \(now - entry.createdAt) s: " + Self.text(reply)
                recipient.nextAttempt = nil
                recipient.notified = entry.sender.isEmpty
            }
        }
    }

    private func save(_ entry: QueueEntry) async {
        do {
            try await self.threadPool.runIfActive { try self.queue.update(entry) }
        } catch {
            self.logger.error("cannot record delivery results", metadata: ["id": "\(entry.id)", "error": "\(error)"])
        }
    }

    // MARK: - Reports

    /// Sends the sender a report of the failures not yet reported (RFC 3464), and a warning
    /// once about a long delay when configured. Never to `<>`.
    private func report(_ entry: inout QueueEntry, message: QueuedMessage?, now: Int64) async {
        let failed = entry.recipients.indices.filter {
            entry.recipients[$0].state == .failed && entry.recipients[$0].notified == false
        }
        var warn = false
        if let delay = self.settings.delayNotice, entry.warned != true, !entry.sender.isEmpty,
            now - entry.createdAt >= delay, entry.recipients.contains(where: { $0.state == .pending })
        {
            warn = true
        }
        guard !failed.isEmpty || warn else { return }
        let reported =
            failed.isEmpty ? entry.recipients.indices.filter { entry.recipients[$0].state == .pending } : failed
        var header = message?.header
        if header == nil {
            header = try? await QueuedMessage.open(
                path: self.queue.messagePath(entry.id),
                threadPool: self.threadPool,
                timestamp: Int(now),
                signers: { _ in [] }
            ).header
        }
        let report = DeliveryStatusNotification(
            reportingMTA: self.settings.hostname,
            sender: entry.sender,
            queueID: entry.id,
            arrivalDate: MessageDate(secondsSince1970: entry.createdAt),
            date: MessageDate(secondsSince1970: now),
            recipients: reported.map { index in
                let recipient = entry.recipients[index]
                return DeliveryStatusNotification.Recipient(
                    address: recipient.address,
                    action: recipient.state == .failed ? .failed : .delayed,
                    status: recipient.status ?? (recipient.state == .failed ? "5.0.0" : "4.0.0"),
                    remoteMTA: recipient.remoteMTA,
                    diagnostic: recipient.lastError ?? "",
                    lastAttempt: recipient.lastAttempt.map { MessageDate(secondsSince1970: $0) }
                )
            },
            originalHeader: header?.bytes ?? [],
            boundary: "=_" + self.makeID()
        )
        let id = self.makeID()
        let rendered = Array("Return-Path: <>\r\n".utf8) + report.rendered
        let reportEntry = QueueEntry(
            id: id,
            createdAt: now,
            sender: "",
            recipients: [entry.sender],
            smtpUTF8: entry.sender.utf8.contains { $0 >= 0x80 },
            body: rendered.contains { $0 >= 0x80 } ? "8BITMIME" : "7BIT",
            authenticatedUser: nil
        )
        do {
            try await self.threadPool.runIfActive {
                try self.queue.add(message: rendered, entry: reportEntry)
            }
        } catch {
            self.logger.error("cannot queue a delivery report", metadata: ["id": "\(entry.id)", "error": "\(error)"])
            return  // the recipients stay unreported: tried again next time
        }
        for index in failed { entry.recipients[index].notified = true }
        if warn { entry.warned = true }
        await self.save(entry)
        self.logger.info(
            failed.isEmpty ? "delay notice" : "bounce",
            metadata: [
                "id": "\(entry.id)", "report": "\(id)", "to": "\(entry.sender)",
                "recipients": "\(reported.map { entry.recipients[$0].address }.joined(separator: ","))",
            ]
        )
        self.enqueued(id)
    }

    // MARK: - Requests from the command line

    /// `petrel sendmail` leaves messages in `pickup/`; `petrel queue` leaves requests in
    /// `queue/control/` (`ID.retry`, `ID.delete`, `ID.bounce`, `all.retry`), removed once done.
    private func handleRequests() async {
        let adopted = (try? await self.threadPool.runIfActive { try self.queue.adopt(from: self.pickup) }) ?? []
        for id in adopted {
            self.logger.info("picked up", metadata: ["id": "\(id)"])
            self.enqueued(id)
        }
        let requests = (try? await self.threadPool.runIfActive { try self.queue.pendingRequests() }) ?? []
        for name in requests {
            let parts = name.split(separator: ".")
            guard parts.count == 2 else {
                self.queue.finishRequest(name)
                continue
            }
            let id = String(parts[0])
            if id == "all", parts[1] == "retry" {
                let ids = self.state.withLockedValue { Array($0.due.keys) }
                for id in ids { await self.handle(.retry, id) }
            } else if let request = QueueRequest(rawValue: String(parts[1])), QueueEntry.isValidID(id) {
                // A message being delivered is dealt with once its attempt is over.
                guard !self.state.withLockedValue({ $0.inFlight.contains(id) }) else { continue }
                await self.handle(request, id)
            }
            self.queue.finishRequest(name)
        }
    }

    private func handle(_ request: QueueRequest, _ id: String) async {
        guard !self.state.withLockedValue({ $0.inFlight.contains(id) }),
            var entry = try? await self.threadPool.runIfActive({ try self.queue.entry(id) })
        else { return }
        switch request {
        case .retry:
            entry.retryNow()
            await self.save(entry)
            self.enqueued(id)
        case .delete:
            do {
                try await self.threadPool.runIfActive { try self.queue.remove(id) }
                self.forget(id)
                self.logger.notice("removed", metadata: ["id": "\(id)", "reason": "deleted by the operator"])
            } catch {
                self.logger.error("cannot remove from queue", metadata: ["id": "\(id)", "error": "\(error)"])
            }
        case .bounce:
            entry.returnToSender(now: self.clock())
            await self.save(entry)
            self.enqueued(id)
        }
    }

    // MARK: - Logs

    /// One line per recipient and attempt: where, how (TLS), and what the server said.
    private func log(
        _ entry: QueueEntry,
        indices: [Int],
        results: [ClientSession.RecipientResult],
        via: String?,
        tls: TLSDetails?
    ) {
        for (index, result) in zip(indices, results) {
            var metadata: Logger.Metadata = [
                "id": "\(entry.id)",
                "from": "<\(entry.sender)>",
                "to": "<\(entry.recipients[index].address)>",
                "attempt": "\(entry.recipients[index].attempts + 1)",
                "delay": "\(self.clock() - entry.createdAt)s",
            ]
            if let via { metadata["relay"] = "\(via)" }
            if let tls {
                metadata["tls"] = "\(tls.version)"
                metadata["verified"] = "\(tls.verified ? "yes" : "no")"
                if let problem = tls.problem { metadata["tls_problem"] = "\(problem)" }
            }
            switch result {
            case .delivered(let reply):
                metadata["status"] = "sent"
                metadata["reply"] = "\(Self.text(reply))"
            case .deferred(let reply):
                metadata["status"] = "deferred"
                metadata["reply"] = "\(Self.text(reply))"
            case .failed(let reply):
                metadata["status"] = "bounced"
                metadata["reply"] = "\(Self.text(reply))"
            }
            self.logger.info("delivery", metadata: metadata)
            Counter(
                label: "petrel_deliveries_total",
                dimensions: [("result", metadata["status"].map { "\($0)" } ?? "")],
                factory: self.metrics
            ).increment()
        }
    }

    static func text(_ reply: SMTPReply) -> String {
        let code = reply.enhancedCode.map { " \($0)" } ?? ""
        return "\(reply.code)\(code) \(reply.lines.joined(separator: " "))"
    }

    static func enhancedCode(_ text: String) -> EnhancedStatusCode? {
        let parts = text.split(separator: ".").compactMap { UInt16($0) }
        guard parts.count == 3, (2...5).contains(parts[0]) else { return nil }
        return EnhancedStatusCode(UInt8(parts[0]), parts[1], parts[2])
    }
}
