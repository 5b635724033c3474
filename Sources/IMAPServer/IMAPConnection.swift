import IMAPCore
import Logging
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore

/// The async half of one IMAP connection: a task that reads what the client sends through
/// `IMAPInboundFramer`, hands each command to the session (`IMAPSessionDriver`), and writes the
/// responses, in order. It also runs what needs the client's next lines (a SASL exchange,
/// IDLE until `DONE`) and, in IDLE, tells the client of new mail as it arrives: deliveries and
/// other sessions wake it (`MailboxChanges`), then it compares its view with the state the
/// account published (`MailAccount.publishedState`); every few seconds it looks for other
/// programs' changes, or takes another session's look.
final class IMAPConnection {
    typealias Channel = NIOAsyncChannel<IMAPInbound, IMAPOutbound>
    typealias Outbound = NIOAsyncChannelOutboundWriter<IMAPOutbound>

    enum Event: Sendable {
        case inbound(IMAPInbound)
        case closed
        /// The user's mailboxes changed, or it is time to look for other programs' changes
        /// (in IDLE); several come as one (`Wakeups`).
        case wakeup
        /// The server is shutting down: `* BYE` once the command under way is done.
        case shutdown
    }

    /// Coalesces wake-ups: a burst of changes (a thousand EXPUNGEs of another session, ticks
    /// while a slow client holds a write) is one event in the queue, not one each.
    final class Wakeups: Sendable {
        /// Why a session is woken; several wakes ask for the most of them (a look at the
        /// directories also finds what the published state has).
        enum Reason: Comparable {
            /// This process changed the user's mailboxes: the account's published state has it.
            case changed
            /// Time to look for other programs' changes in the directories.
            case look
        }

        /// What the queued wake-up is for (the most any wake asked); nil when none is queued.
        private let pending = NIOLockedValueBox<Reason?>(nil)
        let events: AsyncStream<Event>.Continuation

        init(_ events: AsyncStream<Event>.Continuation) {
            self.events = events
        }

        func wake(_ reason: Reason) {
            let queue = self.pending.withLockedValue { pending in
                defer { pending = max(pending ?? reason, reason) }
                return pending == nil
            }
            if queue { self.events.yield(.wakeup) }
        }

        /// The wake-up was taken: the next one queues again.
        func taken() -> Reason {
            self.pending.withLockedValue { pending in
                defer { pending = nil }
                return pending ?? .changed
            }
        }
    }

    enum Mode {
        case commands
        case authenticating(tag: String, exchange: any IMAPAuthenticationExchange)
        case idling(tag: String)
        case closing
    }

    /// What ended the session, for its log line.
    enum Outcome: String {
        case logout
        case disconnected = "client disconnected"
        case errors = "too many errors"
        case refused
        case unframeable = "unframeable input"
        case shutdown
    }

    /// How often a session in IDLE looks for changes other programs made to the Maildir.
    static let pollInterval = Duration.seconds(3)

    let configuration: IMAPServerConfiguration
    let metrics: IMAPMetrics
    let service: any IMAPAccountService
    let users: IMAPUserSessions
    let silence: IMAPSilenceLimit
    let logger: Logger
    let driver: IMAPSessionDriver
    var framer: IMAPInboundFramer
    var mode = Mode.commands
    var outcome = Outcome.disconnected
    /// The message of an APPEND being streamed to disk.
    var upload: AppendUpload?
    /// The user whose session slot this connection holds.
    var user: String?
    /// The command being carried out, for the metrics of its tagged response.
    private var current = "unreadable"
    private var outbound: Outbound?
    private var listening: (@Sendable () -> Void)?
    /// The events the connection's task handles, in order; made before it runs, so that a
    /// shutdown can be asked for at any time (`requestShutdown`).
    private let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let wakeups: Wakeups

    init(
        configuration: IMAPServerConfiguration,
        accounts: MailAccounts,
        service: any IMAPAccountService,
        users: IMAPUserSessions,
        silence: IMAPSilenceLimit,
        client: IMAPClient,
        metrics: IMAPMetrics = IMAPMetrics(factory: nil),
        logger: Logger
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.service = service
        self.users = users
        self.silence = silence
        self.logger = logger
        self.framer = IMAPInboundFramer(limits: configuration.limits)
        // A stranger holds little: the full limits come with the login.
        self.framer.setLimits(
            commandSize: min(configuration.limits.commandSize, IMAPLimits.beforeLoginCommandSize),
            inlineLiteralSize: min(configuration.limits.inlineLiteralSize, IMAPLimits.beforeLoginCommandSize)
        )
        (self.events, self.continuation) = AsyncStream<Event>.makeStream()
        self.wakeups = Wakeups(self.continuation)
        self.driver = IMAPSessionDriver(
            session: IMAPSession(configuration: configuration.session),
            accounts: accounts,
            service: service,
            client: client,
            logger: logger
        )
    }

    var client: IMAPClient { self.driver.client }

    /// Asks the session to end with `* BYE` after the command under way (graceful shutdown).
    var requestShutdown: @Sendable () -> Void {
        let continuation = self.continuation
        return { continuation.yield(.shutdown) }
    }

    func run(_ channel: Channel) async {
        let started = ContinuousClock.now
        self.metrics.sessionStarted(self.configuration.kind)
        defer { self.metrics.sessionEnded() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                self.outbound = outbound
                try await self.serve(inbound)
            }
        } catch {
            // The connection ended under us (reset, TLS failure): the outcome says so.
        }
        self.listening?()
        self.upload?.abandon()
        self.driver.upload?.abandon()
        if let user = self.user { self.users.release(user) }
        let duration = ContinuousClock.now - started
        self.logger.info(
            "imap session",
            metadata: [
                "session": "\(self.client.id)", "client": "\(self.client.remoteIP)",
                "listener": "\(self.configuration.kind.rawValue)", "user": "\(self.user ?? "-")",
                "tls": "\(self.driver.session.tls)", "commands": "\(self.driver.commands)",
                "failed": "\(self.driver.failures)", "outcome": "\(self.outcome.rawValue)",
                "duration": "\(duration.components.seconds)s",
                "client_id": "\(Self.describe(self.driver.session.clientID))",
            ]
        )
    }

    /// The client's ID fields (RFC 2971) as one log value: `name=Thunderbird version=128.3`,
    /// printable and bounded whatever the client sent; `-` when it sent none.
    static func describe(_ fields: [IMAPIDField]?) -> String {
        guard let fields, !fields.isEmpty else { return "-" }
        func clean(_ text: String, _ limit: Int) -> String {
            String(
                text.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F && $0 != "=" }.prefix(limit).map(
                    Character.init
                )
            )
        }
        return fields.prefix(8).map { clean($0.name, 20) + "=" + clean($0.value ?? "NIL", 40) }.joined(separator: " ")
    }

    private func serve(_ inbound: NIOAsyncChannelInboundStream<IMAPInbound>) async throws {
        if let refusal = await self.service.admit(self.client) {
            self.outcome = .refused
            try await self.write([.untagged(.bye, nil, refusal)])
            return
        }
        try await self.write([self.driver.session.greeting])
        let (acks, acknowledge) = AsyncStream<Void>.makeStream()
        let continuation = self.continuation
        let wakeups = self.wakeups
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Reads one element at a time: the next read waits for the last to be handled, so
            // what a client sends ahead stays in the socket (backpressure), not in memory.
            group.addTask {
                var acknowledged = acks.makeAsyncIterator()
                do {
                    for try await element in inbound {
                        continuation.yield(.inbound(element))
                        guard await acknowledged.next() != nil else { break }
                    }
                } catch {}
                continuation.yield(.closed)
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.pollInterval)
                    wakeups.wake(.look)
                }
            }
            loop: for await event in self.events {
                switch event {
                case .inbound(let element):
                    switch element {
                    case .bytes(let bytes): self.framer.append(bytes)
                    case .tlsEstablished:
                        self.framer.layerStarted()
                        self.driver.session.tlsStarted()
                    case .compressionStarted:
                        self.framer.layerStarted()
                    }
                    try await self.drain(group: &group)
                    acknowledge.yield()
                case .closed:
                    break loop
                case .wakeup:
                    let reason = wakeups.taken()
                    if case .idling = self.mode { try await self.reportChanges(reason) }
                case .shutdown:
                    self.outcome = .shutdown
                    try await self.write([.untagged(.bye, nil, "server shutting down")])
                    break loop
                }
                if case .closing = self.mode { break loop }
            }
            acknowledge.finish()
            continuation.finish()
            group.cancelAll()
        }
    }

    /// Takes every event the framer has.
    private func drain(group: inout ThrowingTaskGroup<Void, any Error>) async throws {
        while let event = self.framer.next() {
            switch event {
            case .command(let text):
                try await self.command(text, group: &group)
            case .literal(let announcement):
                try await self.literal(announcement, group: &group)
            case .literalData(let bytes):
                await self.upload?.write(bytes)
            case .literalEnd:
                await self.upload?.finish()
            case .commandTooLong(let start):
                let step = self.driver.session.tooLong(tag: IMAPCommandText.tag(of: start), "command too long")
                try await self.perform(step, group: &group)
            case .unframeable:
                self.outcome = .unframeable
                try await self.write([.untagged(.bye, nil, "a literal's size is too large to read")])
                self.mode = .closing
            case .line(let line):
                try await self.line(line, group: &group)
            }
            if case .closing = self.mode { return }
        }
    }

    private func command(_ text: IMAPCommandText, group: inout ThrowingTaskGroup<Void, any Error>) async throws {
        switch IMAPCommandParser.parse(text) {
        case .failure(let error):
            self.upload?.abandon()
            self.upload = nil
            self.current = "unreadable"
            let step = self.driver.session.unreadable(tag: error.tag, error.text)
            try await self.perform(step, group: &group)
        case .success(let command):
            self.current = command.command.name
            if case .append = command.command {
                self.driver.upload = self.upload
            } else {
                self.upload?.abandon()
            }
            self.upload = nil
            let step = self.driver.session.receive(command)
            try await self.perform(step, group: &group)
        }
    }

    /// Carries out what the session decided.
    private func perform(_ step: IMAPSession.Step, group: inout ThrowingTaskGroup<Void, any Error>) async throws {
        switch step {
        case .respond(let responses):
            try await self.write(responses)
            self.framer.resume(.commands)
        case .close(let responses):
            try await self.write(responses)
            if self.outcome == .disconnected { self.outcome = self.current == "LOGOUT" ? .logout : .errors }
            self.framer.resume(.close)
            self.mode = .closing
        case .startTLS(let tag):
            guard let tls = self.configuration.tls else {
                // The session offers STARTTLS only with a certificate: not reached.
                try await self.write([.tagged(tag, .no, .cannot, "STARTTLS is not available")])
                self.framer.resume(.commands)
                return
            }
            // The OK and the switch go down in one message: the handler adds TLS in the same
            // event-loop turn as it flushes the OK, so the client's first TLS octets, which it
            // sends on reading the OK, can never be read before TLS is there.
            let ok = self.ok(tag, "begin TLS negotiation now")
            self.framer.resume(.startTLS)
            try await self.outbound?.write(
                .startTLS(ok, tls, handshakeTimeout: self.configuration.timeouts.tlsHandshake)
            )
        case .compress(let tag):
            // As with STARTTLS: the OK and the compressor in one turn of the event loop.
            let ok = self.ok(tag, "DEFLATE active")
            self.framer.resume(.compress)
            try await self.outbound?.write(.compress(ok))
        case .authenticate(let tag, let mechanism, let initialResponse):
            let exchange = self.service.beginAuthentication(mechanism: mechanism, client: self.client)
            try await self.authenticationStep(
                tag,
                exchange,
                await exchange.start(initialResponse: initialResponse),
                group: &group
            )
        case .login(let tag, let username, let password):
            // LOGIN is PLAIN with the same checks and limits.
            let exchange = self.service.beginAuthentication(mechanism: "PLAIN", client: self.client)
            let response = [0] + Array(username.utf8) + [0] + Array(password.utf8)
            try await self.authenticationStep(
                tag,
                exchange,
                await exchange.start(initialResponse: response),
                group: &group
            )
        case .mailbox(let command):
            if case .idle = command.command {
                try await self.startIdle(command.tag)
                return
            }
            let status = try await self.driver.perform(command, write: { try await self.outbound?.write(.bytes($0)) })
            self.metrics.command(self.current, status.rawValue)
            if self.driver.session.finished(failed: status == .bad) {
                self.outcome = .errors
                try await self.write([.untagged(.bye, nil, "too many errors")])
                self.mode = .closing
                self.framer.resume(.close)
                return
            }
            self.framer.resume(.commands)
        }
    }

    // MARK: - Authentication

    private func authenticationStep(
        _ tag: String,
        _ exchange: any IMAPAuthenticationExchange,
        _ step: IMAPAuthenticationStep,
        group: inout ThrowingTaskGroup<Void, any Error>
    ) async throws {
        switch step {
        case .challenge(let data):
            self.mode = .authenticating(tag: tag, exchange: exchange)
            try await self.write([.continuation(Base64.encode(data))])
            self.framer.resume(.line)
        case .succeeded(let user):
            self.mode = .commands
            guard self.users.acquire(user, limit: self.configuration.sessionsPerUser) else {
                try await self.write([.tagged(tag, .no, .limit, "too many sessions for this user; log out of another")])
                self.framer.resume(.commands)
                return
            }
            do {
                try await self.driver.loggedIn(user)
            } catch {
                self.users.release(user)
                self.logger.error(
                    "cannot open mailboxes",
                    metadata: ["session": "\(self.client.id)", "user": "\(user)", "error": "\(error)"]
                )
                try await self.write([
                    .tagged(tag, .no, .unavailable, "the mailboxes cannot be opened; try again later")
                ])
                self.framer.resume(.commands)
                return
            }
            self.user = user
            self.silence.loggedIn(idle: self.configuration.timeouts.idle)
            self.framer.setLimits(
                commandSize: self.configuration.limits.commandSize,
                inlineLiteralSize: self.configuration.limits.inlineLiteralSize
            )
            let (changes, cancel) = self.driver.accounts.changes.listen(user)
            self.listening = cancel
            let wakeups = self.wakeups
            group.addTask {
                for await _ in changes { wakeups.wake(.changed) }
            }
            try await self.write([
                .tagged(tag, .ok, .capability(self.driver.session.capabilities), "logged in")
            ])
            self.framer.resume(.commands)
        case .failed(let code, let text, let close):
            self.mode = .commands
            if close {
                self.outcome = .refused
                try await self.write([.tagged(tag, .no, code, text), .untagged(.bye, nil, text)])
                self.framer.resume(.close)
                self.mode = .closing
                return
            }
            let next = self.driver.session.loginFailed(.tagged(tag, .no, code, text))
            try await self.perform(next, group: &group)
        }
    }

    private func line(_ line: ByteBuffer?, group: inout ThrowingTaskGroup<Void, any Error>) async throws {
        switch self.mode {
        case .authenticating(let tag, let exchange):
            guard let line else {
                try await self.authenticationStep(tag, exchange, await exchange.cancel(), group: &group)
                return
            }
            let text = Array(line.readableBytesView)
            if text == Array("*".utf8) {
                let step = await exchange.cancel()
                if case .failed(let code, let text, let close) = step, !close {
                    self.mode = .commands
                    try await self.perform(
                        self.driver.session.loginFailed(.tagged(tag, .bad, code, text)),
                        group: &group
                    )
                    return
                }
                try await self.authenticationStep(tag, exchange, step, group: &group)
                return
            }
            guard let decoded = Base64.decode(text) else {
                self.mode = .commands
                _ = await exchange.cancel()
                try await self.perform(
                    self.driver.session.loginFailed(.tagged(tag, .bad, nil, "the response is not valid base64")),
                    group: &group
                )
                return
            }
            try await self.authenticationStep(tag, exchange, await exchange.receive(decoded), group: &group)
        case .idling(let tag):
            self.mode = .commands
            let done = line.map(IMAPCommandText.isIdleDone) ?? false
            let updates = try await self.updatesNow()
            if done {
                try await self.write(updates + [.tagged(tag, .ok, nil, "IDLE done")])
            } else {
                try await self.write(updates + [.tagged(tag, .bad, nil, "IDLE ends with DONE")])
            }
            self.framer.resume(.commands)
        case .commands, .closing:
            self.framer.resume(.commands)
        }
    }

    // MARK: - IDLE

    private func startIdle(_ tag: String) async throws {
        self.mode = .idling(tag: tag)
        try await self.write(try await self.updatesNow() + [.continuation("idling")])
        self.framer.resume(.line)
    }

    /// Tells the client in IDLE what changed. Woken by a change this process made, the session
    /// reads the account's published state; for a look at the directories, it reads what
    /// another session looked at less than a poll interval ago, else looks itself. Either way,
    /// thousands of sessions idling on one folder make about one trip to the account's threads
    /// per change and per interval, not one each.
    private func reportChanges(_ reason: Wakeups.Reason) async throws {
        let interval = Self.pollInterval.components
        let maxAge: Int64 =
            switch reason {
            case .changed: .max
            case .look: interval.seconds * 1_000_000_000 + interval.attoseconds / 1_000_000_000
            }
        let updates = try await self.updatesNow(checkedWithin: maxAge)
        if !updates.isEmpty { try await self.write(updates) }
    }

    /// What the selected folder's changes are for the client in IDLE (none when they cannot be
    /// read now: the next look tries again). By default after a look at the directories.
    private func updatesNow(checkedWithin maxAge: Int64 = 0) async throws -> [IMAPResponse] {
        guard let account = self.driver.account, self.driver.selected != nil else { return [] }
        do {
            return try await self.driver.idleUpdates(account, checkedWithin: maxAge)
        } catch {
            return []
        }
    }

    // MARK: - Literals

    private func literal(
        _ announcement: IMAPLiteralAnnouncement,
        group: inout ThrowingTaskGroup<Void, any Error>
    ) async throws {
        let tag = announcement.command.tag ?? "*"
        let isAppend = announcement.command.isAppend
        if isAppend && self.driver.session.isAuthenticated {
            guard announcement.size <= self.configuration.appendLimit else {
                self.framer.decide(.refuse)
                try await self.write([
                    .tagged(
                        tag,
                        .no,
                        .tooBig,
                        "the message is larger than APPENDLIMIT (\(self.configuration.appendLimit))"
                    )
                ])
                return
            }
            // A small message comes in memory; a larger one streams to a file in incoming/ as it
            // arrives (AppendUpload), so that a connection holds one block of it at a time. The
            // other literals of the command (flags, date) are small and come in memory.
            if self.framer.fitsInMemory(announcement) {
                self.framer.decide(.inMemory)
            } else {
                self.upload?.abandon()
                do {
                    self.upload = try await self.driver.accounts.beginUpload()
                } catch {
                    self.upload = nil
                    self.framer.decide(.refuse)
                    try await self.write([
                        .tagged(tag, .no, .serverBug, "cannot store the message now; try again later")
                    ])
                    return
                }
                self.framer.decide(.stream)
            }
        } else if self.framer.decide(.inMemory) == .refuse {
            try await self.perform(
                self.driver.session.tooLong(
                    tag: tag,
                    "literal too large (\(self.configuration.limits.inlineLiteralSize) octets at most)"
                ),
                group: &group
            )
            return
        }
        if announcement.synchronizing { try await self.write([.continuation("ready for the literal")]) }
    }

    /// A tagged OK's octets, counted in the metrics as `write` counts them.
    private func ok(_ tag: String, _ text: String) -> ByteBuffer {
        self.metrics.command(self.current, IMAPStatus.ok.rawValue)
        return self.driver.encode([.tagged(tag, .ok, nil, text)])
    }

    private func write(_ responses: [IMAPResponse]) async throws {
        guard !responses.isEmpty else { return }
        for case .tagged(_, let status, _, _) in responses { self.metrics.command(self.current, status.rawValue) }
        try await self.outbound?.write(.bytes(self.driver.encode(responses)))
    }
}
