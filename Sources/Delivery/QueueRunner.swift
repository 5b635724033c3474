import Logging
import MailAuth
import MailCore
import MailStore
import Metrics
import NIOConcurrencyHelpers
import PetrelSystem
import SMTPCore
import ServiceLifecycle

/// The queue runner: picks due messages, groups their recipients by destination (`DeliveryPlan`),
/// hands each group to its courier (`LocalCourier` for our domains, `RemoteCourier` for the
/// rest), records every recipient's result durably as soon as it is known (`RecipientLedger`),
/// retries what was deferred, and reports failures to the sender.
///
/// A recipient recorded as delivered is never sent again: the envelope is rewritten (synced)
/// after each destination's result, so a crash repeats at most the deliveries in flight, and a
/// remote server that had not said 250 yet has not taken the message either.
public final class QueueRunner: Service, Sendable {
    /// The couriers the runner hands transactions to, by destination.
    public struct Couriers: Sendable {
        /// Recipients in our own domains.
        public var local: any Courier
        /// Everyone else: MX hosts, or the relay.
        public var remote: any Courier

        public init(local: any Courier, remote: any Courier) {
            self.local = local
            self.remote = remote
        }
    }

    let queue: any QueueStore
    let couriers: Couriers
    let settings: DeliverySettings
    /// The keys that sign mail from one of our domains (the domain is given).
    let signers: @Sendable (String) -> [DKIMSigner]
    let makeID: @Sendable () -> String
    /// Unix seconds.
    let clock: @Sendable () -> Int64
    let logger: Logger
    /// Where `petrel_deliveries_total` goes (the server's Prometheus registry).
    let metrics: any MetricsFactory
    let state = NIOLockedValueBox(State())
    private let wakeups: AsyncStream<Void>
    private let wakeup: AsyncStream<Void>.Continuation

    struct State {
        /// When each message is next due (Unix seconds).
        var due: [String: Int64] = [:]
        var inFlight: Set<String> = []
        var stopping = false
        /// Arrival times, for the age of the oldest message.
        var arrivals: [String: Int64] = [:]
        /// The last error taking in pickup/, logged once rather than every second.
        var pickupError: String?
    }

    public init(
        queue: any QueueStore,
        couriers: Couriers,
        settings: DeliverySettings,
        signers: @escaping @Sendable (String) -> [DKIMSigner],
        makeID: @escaping @Sendable () -> String,
        clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) },
        logger: Logger,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance
    ) {
        self.queue = queue
        self.couriers = couriers
        self.settings = settings
        self.signers = signers
        self.makeID = makeID
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        (self.wakeups, self.wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
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
                        group.addTask { await self.processTaken(id) }
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

    /// One round, awaited: the requests waiting, then every message due now, each to its end.
    /// `run` does the same without waiting, on every wake-up; tests drive the runner with this
    /// and a clock of their own.
    public func deliverDue() async {
        await self.handleRequests()
        await withDiscardingTaskGroup { group in
            for id in self.takeDue() {
                group.addTask { await self.processTaken(id) }
            }
        }
    }

    /// Reads the queue's entries into the schedule (at start-up).
    public func load() async {
        let entries = (try? await self.queue.entries()) ?? []
        self.state.withLockedValue { state in
            for entry in entries {
                state.due[entry.id] = RecipientLedger.nextDue(entry) ?? 0
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

    // MARK: - One message

    /// A message `takeDue` marked in flight.
    private func processTaken(_ id: String) async {
        await self.process(id)
        self.state.withLockedValue { _ = $0.inFlight.remove(id) }
        self.wakeup.yield()
    }

    /// Everything due for one message: delivery attempts, then reports, then its removal when
    /// nothing is left to do.
    func process(_ id: String) async {
        let now = self.clock()
        var entry: QueueEntry
        do {
            guard let found = try await self.queue.entry(id) else {
                self.forget(id)  // removed meanwhile
                return
            }
            entry = found
        } catch {
            // Unreadable now (no descriptor left, an I/O error): looked at again later.
            self.logger.warning("cannot read queue entry", metadata: ["id": "\(id)", "error": "\(error)"])
            self.state.withLockedValue { $0.due[id] = now + Int64(self.settings.schedule.first) }
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
                    id,
                    in: self.queue,
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
        let next = RecipientLedger.nextDue(entry)
        if next == nil {
            do {
                try await self.queue.remove(id)
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

    func forget(_ id: String) {
        self.state.withLockedValue { state in
            state.due.removeValue(forKey: id)
            state.arrivals.removeValue(forKey: id)
        }
    }

    func isLocal(_ address: Mailbox) -> Bool {
        Destination(of: address, localDomains: self.settings.localDomains, relay: false) == .local
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
        let plan = DeliveryPlan(
            recipients: indices.map { ($0, entry.recipients[$0].address) },
            localDomains: self.settings.localDomains,
            relay: self.settings.relay != nil
        )
        await withTaskGroup(of: (DeliveryPlan.Transaction, CourierReport).self) { group in
            for transaction in plan.transactions {
                let parcel = Parcel(
                    id: entry.id,
                    sender: entry.sender,
                    recipients: transaction.indices.map { entry.recipients[$0].address },
                    destination: transaction.destination,
                    message: message,
                    size: message.size,
                    eightBit: entry.body == "8BITMIME",
                    smtpUTF8: entry.smtpUTF8
                )
                let courier = transaction.destination == .local ? self.couriers.local : self.couriers.remote
                group.addTask { (transaction, await courier.deliver(parcel)) }
            }
            for await (transaction, report) in group {
                for attempt in report.tries {
                    self.log(
                        entry,
                        indices: transaction.indices,
                        results: attempt.results,
                        via: attempt.via,
                        tls: attempt.tls
                    )
                }
                if report.results.count != transaction.indices.count {
                    self.logger.error(
                        "courier gave \(report.results.count) results for \(transaction.indices.count) recipients",
                        metadata: ["id": "\(entry.id)"]
                    )
                }
                for (index, result) in zip(transaction.indices, report.results(count: transaction.indices.count)) {
                    self.settle(&entry.recipients[index], result, remoteMTA: report.remoteMTA, entry: entry, now: now)
                }
                await self.save(entry)
            }
        }
    }

    func settle(
        _ recipient: inout QueueEntry.Recipient,
        _ result: DeliveryResult,
        remoteMTA: String?,
        entry: QueueEntry,
        now: Int64
    ) {
        RecipientLedger(schedule: self.settings.schedule).settle(
            &recipient,
            result,
            remoteMTA: remoteMTA,
            entry: entry,
            now: now
        )
    }

    func save(_ entry: QueueEntry) async {
        do {
            try await self.queue.update(entry)
        } catch {
            self.logger.error("cannot record delivery results", metadata: ["id": "\(entry.id)", "error": "\(error)"])
        }
    }
}
