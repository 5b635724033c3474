import Logging
import MailCore
import MailStore
import NIOConcurrencyHelpers
import PetrelTestSupport
import SMTPCore
import Testing

@testable import Delivery

/// A courier that answers from a script: no sockets, no mailboxes. It keeps every parcel (and
/// the message as it was streamed) so a test can say what went where.
final class ScriptedCourier: Courier {
    struct Delivered: Sendable {
        var parcel: Parcel
        var text: String
    }

    private let answer: NIOLockedValueBox<@Sendable (String) -> DeliveryResult>
    private let log = NIOLockedValueBox<[Delivered]>([])
    /// A defective courier: answers for all recipients but the last.
    let omitsLastResult = NIOLockedValueBox(false)

    init(_ answer: @escaping @Sendable (String) -> DeliveryResult = { _ in .delivered(.ok) }) {
        self.answer = NIOLockedValueBox(answer)
    }

    /// From now on, answers this way.
    func answer(_ answer: @escaping @Sendable (String) -> DeliveryResult) {
        self.answer.withLockedValue { $0 = answer }
    }

    var delivered: [Delivered] { self.log.withLockedValue { $0 } }
    /// Each parcel's recipients, as text.
    var recipients: [[String]] { self.delivered.map { $0.parcel.recipients.map(\.description) } }

    func deliver(_ parcel: Parcel) async -> CourierReport {
        var bytes: [UInt8] = []
        try? await parcel.message.stream { bytes += $0.readableBytesView }
        self.log.withLockedValue { $0.append(Delivered(parcel: parcel, text: String(decoding: bytes, as: UTF8.self))) }
        let answer = self.answer.withLockedValue { $0 }
        let results = parcel.recipients.map { answer($0.description) }
        return CourierReport(
            via: "scripted",
            results: self.omitsLastResult.withLockedValue { $0 } ? results.dropLast() : results
        )
    }
}

/// Keeps every log line, for the tests that read what an operator would.
struct CapturingLogHandler: LogHandler {
    let lines: NIOLockedValueBox<[(message: String, metadata: Logger.Metadata)]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.lines.withLockedValue {
            $0.append(("\(event.message)", self.metadata.merging(event.metadata ?? [:]) { $1 }))
        }
    }
}

/// Unix seconds that move only when a test says so.
final class ManualClock: Sendable {
    private let now = NIOLockedValueBox<Int64>(1_800_000_000)
    var time: Int64 { self.now.withLockedValue { $0 } }
    func advance(_ seconds: Int64) { self.now.withLockedValue { $0 += seconds } }
}

/// The queue runner over a queue in memory, with scripted couriers and a manual clock: what is
/// due, which courier gets which recipients, what is recorded, retried, reported and removed.
/// No sockets, no sleeping: `deliverDue` runs one round to its end.
struct QueueRunnerTests {
    static let message = "Return-Path: <alice@petrel.test>\r\nFrom: alice@petrel.test\r\nSubject: hi\r\n\r\nhello\r\n"
    static let deferred = DeliveryResult.deferred(SMTPReply(451, EnhancedStatusCode(4, 2, 1), "busy"))
    static let unknown = DeliveryResult.failed(SMTPReply(550, EnhancedStatusCode(5, 1, 1), "no such user"))

    struct Setup {
        let queue = InMemoryQueue()
        let local = ScriptedCourier()
        let remote = ScriptedCourier()
        let clock = ManualClock()
        let logs = NIOLockedValueBox<[(message: String, metadata: Logger.Metadata)]>([])
        let runner: QueueRunner

        init(configure: (inout DeliverySettings) -> Void = { _ in }) {
            var settings = DeliverySettings(hostname: "mx.petrel.test", localDomains: ["petrel.test"])
            settings.schedule = RetrySchedule(first: 300, ceiling: 3600, maximumAge: 86_400)
            configure(&settings)
            let clock = self.clock
            let ids = NIOLockedValueBox(0)
            let logs = self.logs
            let logger = Logger(label: "queue-runner-test") { _ in CapturingLogHandler(lines: logs) }
            self.runner = QueueRunner(
                queue: self.queue,
                couriers: .init(local: self.local, remote: self.remote),
                settings: settings,
                signers: { _ in [] },
                makeID: {
                    "R"
                        + String(
                            ids.withLockedValue {
                                $0 += 1
                                return $0
                            }
                        )
                },
                clock: { clock.time },
                logger: logger
            )
        }

        /// Queues a message (created now) and tells the runner.
        func queue(
            _ id: String = "Q1",
            from sender: ReversePath = "alice@petrel.test",
            to recipients: [Mailbox],
            message: String = QueueRunnerTests.message
        ) {
            let entry = QueueEntry(
                id: id,
                createdAt: self.clock.time,
                sender: sender,
                recipients: recipients,
                smtpUTF8: false,
                body: "7BIT",
                authenticatedUser: nil
            )
            self.queue.put(entry, message: message)
            self.runner.enqueued(id)
        }

        func states(_ id: String = "Q1") -> [QueueEntry.Recipient.State]? {
            self.queue[id]?.recipients.map(\.state)
        }
    }

    @Test func eachRecipientGoesToItsDestinationsCourier() async throws {
        let setup = Setup()
        setup.queue(to: ["bob@petrel.test", "carol@remote.test", "dave@other.test", "erin@remote.test"])
        await setup.runner.deliverDue()
        #expect(setup.local.recipients == [["bob@petrel.test"]])
        let remote = setup.remote.delivered.sorted {
            $0.parcel.recipients[0].description < $1.parcel.recipients[0].description
        }
        #expect(remote.map(\.parcel.recipients) == [["carol@remote.test", "erin@remote.test"], ["dave@other.test"]])
        #expect(remote.map(\.parcel.destination) == [.domain("remote.test"), .domain("other.test")])
        #expect(remote.allSatisfy { $0.parcel.sender == "alice@petrel.test" && $0.parcel.id == "Q1" })
        // Return-Path is for the final delivery to add (RFC 5321 §4.4).
        #expect(remote[0].text == "From: alice@petrel.test\r\nSubject: hi\r\n\r\nhello\r\n")
        #expect(setup.queue.ids.isEmpty, "everyone delivered: the message leaves the queue")
        // One line per recipient and attempt, as an operator greps for it.
        let lines = setup.logs.withLockedValue { $0 }.filter { $0.message == "delivery" }.map(\.metadata)
        let carol = try #require(lines.first { $0["to"] == "<carol@remote.test>" })
        #expect(carol["from"] == "<alice@petrel.test>" && carol["id"] == "Q1" && carol["status"] == "sent")
        #expect(carol["relay"] == "scripted" && carol["reply"] == "250 2.0.0 OK" && carol["attempt"] == "1")
        #expect(lines.count == 4)
    }

    @Test func aRelaySendsAllRemoteRecipientsTogether() async {
        let setup = Setup { $0.relay = .init(host: "smarthost.test", port: 587, credentials: nil) }
        setup.queue(to: ["carol@remote.test", "bob@petrel.test", "dave@other.test"])
        await setup.runner.deliverDue()
        #expect(setup.remote.recipients == [["carol@remote.test", "dave@other.test"]])
        #expect(setup.remote.delivered.first?.parcel.destination == .relay)
        #expect(setup.local.recipients == [["bob@petrel.test"]])
    }

    @Test func aDeferredRecipientWaitsForTheScheduleAndIsTheOnlyOneSentAgain() async throws {
        let setup = Setup()
        setup.remote.answer { $0.hasPrefix("carol") ? QueueRunnerTests.deferred : .delivered(.ok) }
        setup.queue(to: ["carol@remote.test", "dave@remote.test"])
        let start = setup.clock.time
        await setup.runner.deliverDue()
        #expect(setup.states() == [.pending, .delivered])
        let carol = try #require(setup.queue["Q1"]?.recipients[0])
        #expect(carol.nextAttempt == start + 300 && carol.attempts == 1)
        #expect(carol.status == "4.2.1" && carol.lastError == "451 4.2.1 busy")

        setup.clock.advance(299)
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.count == 1, "not due yet")

        setup.clock.advance(1)
        setup.remote.answer { _ in .delivered(.ok) }
        await setup.runner.deliverDue()
        #expect(setup.remote.recipients == [["carol@remote.test", "dave@remote.test"], ["carol@remote.test"]])
        #expect(setup.queue.ids.isEmpty)
    }

    /// A courier that gives fewer results than recipients (a defect) loses nobody: those it
    /// left out are deferred by the schedule, not left due at once, and the error is logged.
    @Test func recipientsACourierGaveNoResultAreDeferred() async throws {
        let setup = Setup()
        setup.local.omitsLastResult.withLockedValue { $0 = true }
        setup.queue(to: ["bob@petrel.test", "carol@petrel.test"])
        let start = setup.clock.time
        await setup.runner.deliverDue()
        #expect(setup.states() == [.delivered, .pending])
        let carol = try #require(setup.queue["Q1"]?.recipients[1])
        #expect(carol.nextAttempt == start + 300 && carol.lastError == "451 4.3.0 no result from the courier")
        let messages = setup.logs.withLockedValue { $0 }.map(\.message)
        #expect(messages.contains("courier gave 1 results for 2 recipients"))
        await setup.runner.deliverDue()
        #expect(setup.local.delivered.count == 1, "not tried again at once")
    }

    /// An entry that cannot be read for now is looked at again after the first retry interval,
    /// not forgotten until the next start.
    @Test func anEntryUnreadableForNowIsTriedLater() async throws {
        let setup = Setup()
        setup.queue(to: ["carol@remote.test"])
        setup.queue.state.withLockedValue { $0.unreadable = true }
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.isEmpty && setup.queue.ids == ["Q1"])
        #expect(setup.logs.withLockedValue { $0 }.contains { $0.message == "cannot read queue entry" })
        setup.queue.state.withLockedValue { $0.unreadable = false }
        setup.clock.advance(299)
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.isEmpty, "not due yet")
        setup.clock.advance(1)
        await setup.runner.deliverDue()
        #expect(setup.remote.recipients == [["carol@remote.test"]] && setup.queue.ids.isEmpty)
    }

    @Test func aFailureIsReportedToTheSenderOnce() async throws {
        let setup = Setup()
        setup.remote.answer { _ in QueueRunnerTests.unknown }
        setup.queue(to: ["carol@remote.test"])
        await setup.runner.deliverDue()
        #expect(setup.queue.ids == ["R2"], "the failed message is gone, its report queued")
        let report = try #require(setup.queue["R2"])
        #expect(report.sender == "" && report.recipients.map(\.address) == ["alice@petrel.test"])
        let text = try #require(setup.queue.message("R2"))
        #expect(text.hasPrefix("Return-Path: <>\r\n"))
        #expect(text.contains("Final-Recipient: rfc822; carol@remote.test"))
        #expect(text.contains("Status: 5.1.1") && text.contains("550 5.1.1 no such user"))

        // The report goes to our own user through the local courier, and nothing more is sent.
        await setup.runner.deliverDue()
        #expect(setup.local.recipients == [["alice@petrel.test"]])
        #expect(setup.local.delivered.first?.parcel.sender == "")
        #expect(setup.queue.ids.isEmpty)
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.count == 1 && setup.local.delivered.count == 1)
    }

    @Test func aReportThatFailsIsNotReportedAgain() async {
        let setup = Setup()
        setup.remote.answer { _ in QueueRunnerTests.unknown }
        setup.queue(from: "", to: ["carol@remote.test"])
        await setup.runner.deliverDue()
        #expect(setup.queue.ids.isEmpty, "nobody to tell about a report's failure")
    }

    @Test func aMessageTooOldIsGivenUpAndReported() async throws {
        let setup = Setup()
        setup.remote.answer { _ in QueueRunnerTests.deferred }
        setup.queue(to: ["carol@remote.test"])
        var rounds = 0
        while setup.queue["Q1"] != nil, rounds < 100 {
            await setup.runner.deliverDue()
            setup.clock.advance(3600)
            rounds += 1
        }
        #expect(setup.queue["Q1"] == nil)
        // Attempts at 0, 300, 900, 2100, 4500, then hourly: about 24 in a day.
        #expect((20...30).contains(setup.remote.delivered.count), "\(setup.remote.delivered.count)")
        let report = try #require(setup.queue.ids.first.flatMap { setup.queue.message($0) })
        #expect(report.contains("Status: 4.4.7") && report.contains("gave up after"))
    }

    @Test func aDelayNoticeIsSentOnce() async throws {
        let setup = Setup { $0.delayNotice = 600 }
        setup.remote.answer { _ in QueueRunnerTests.deferred }
        setup.queue(to: ["carol@remote.test"])
        await setup.runner.deliverDue()
        #expect(setup.queue.ids == ["Q1"], "too early for a notice")
        setup.clock.advance(900)
        await setup.runner.deliverDue()
        #expect(setup.queue.ids == ["Q1", "R2"])
        #expect(setup.queue.message("R2")?.contains("Action: delayed") == true)
        #expect(setup.queue["Q1"]?.warned == true)
        setup.clock.advance(3600)
        await setup.runner.deliverDue()  // delivers the notice, retries Q1: no second notice
        #expect(setup.queue.ids == ["Q1"])
        #expect(setup.local.delivered.count == 1)
    }

    @Test func aLoopingMessageFailsWithoutACourier() async throws {
        let setup = Setup()
        let received = String(repeating: "Received: from a by b; Sun, 29 Nov 2026 12:00:00 +0000\r\n", count: 51)
        setup.queue(to: ["carol@remote.test"], message: received + QueueRunnerTests.message)
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.isEmpty)
        let report = try #require(setup.queue.ids.first.flatMap { setup.queue.message($0) })
        #expect(report.contains("Status: 5.4.6"))
    }

    @Test func anUnreadableMessageIsDeferred() async throws {
        let setup = Setup()
        setup.queue(to: ["carol@remote.test"])
        setup.queue.state.withLockedValue { $0.messages["Q1"] = nil }
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.isEmpty)
        let carol = try #require(setup.queue["Q1"]?.recipients[0])
        #expect(carol.state == .pending && carol.status == "4.3.0")
    }

    @Test func onHoldNothingIsDelivered() async {
        let setup = Setup { $0.hold = true }
        setup.queue(to: ["carol@remote.test", "bob@petrel.test"])
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.isEmpty && setup.local.delivered.isEmpty)
        #expect(setup.queue.ids == ["Q1"])
    }

    @Test func theQueueIsLoadedAtStart() async {
        let setup = Setup()
        let entry = QueueEntry(
            id: "OLD",
            createdAt: setup.clock.time - 60,
            sender: "alice@petrel.test",
            recipients: ["carol@remote.test"],
            smtpUTF8: false,
            body: nil,
            authenticatedUser: nil
        )
        setup.queue.put(entry, message: QueueRunnerTests.message)
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.isEmpty, "not known before load")
        await setup.runner.load()
        await setup.runner.deliverDue()
        #expect(setup.remote.recipients == [["carol@remote.test"]])
        #expect(setup.queue.ids.isEmpty)
    }

    @Test func requestsFromTheCommandLine() async throws {
        let setup = Setup()
        setup.remote.answer { _ in QueueRunnerTests.deferred }
        setup.queue("Q1", to: ["carol@remote.test"])
        setup.queue("Q2", to: ["dave@remote.test"])
        setup.queue("Q3", to: ["erin@remote.test"])
        await setup.runner.deliverDue()
        #expect(setup.remote.delivered.count == 3)

        // `petrel queue retry`: due now, not in five minutes.
        setup.queue.state.withLockedValue { $0.requests = ["Q1.retry", "Q2.delete", "nonsense", "Q3.bounce"] }
        await setup.runner.deliverDue()
        #expect(setup.queue.state.withLockedValue { $0.requests }.isEmpty, "every request is finished")
        #expect(setup.remote.recipients.suffix(1) == [["carol@remote.test"]])
        #expect(setup.queue["Q2"] == nil, "deleted")
        #expect(setup.queue["Q3"] == nil, "returned to its sender")
        let bounce = try #require(setup.queue.ids.first { $0.hasPrefix("R") }.flatMap { setup.queue.message($0) })
        #expect(bounce.contains("Final-Recipient: rfc822; erin@remote.test"))

        // `petrel queue retry all`.
        setup.queue.state.withLockedValue { $0.requests = ["all.retry"] }
        await setup.runner.deliverDue()
        #expect(setup.remote.recipients.suffix(1) == [["carol@remote.test"]])
        #expect(setup.remote.delivered.count == 5)
    }

    @Test func messagesLeftByPetrelSendmailArePickedUp() async {
        let setup = Setup()
        let entry = QueueEntry(
            id: "P1",
            createdAt: setup.clock.time,
            sender: "alice@petrel.test",
            recipients: ["bob@petrel.test"],
            smtpUTF8: false,
            body: nil,
            authenticatedUser: nil
        )
        setup.queue.state.withLockedValue { $0.pickup = [(entry, Array(QueueRunnerTests.message.utf8))] }
        await setup.runner.deliverDue()
        #expect(setup.local.recipients == [["bob@petrel.test"]])
        #expect(setup.queue.ids.isEmpty)
    }
}
