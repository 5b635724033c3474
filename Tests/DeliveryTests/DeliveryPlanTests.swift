import Delivery
import MailCore
import MailStore
import PetrelTestSupport
import SMTPCore
import Testing

/// The pure parts of the queue runner: where each recipient goes, how the recipients are cut into
/// transactions, and how each result moves a recipient's state. No sockets, no clock.
@Suite struct DeliveryPlanTests {
    static let local: Set<String> = ["petrel.test"]

    @Test(arguments: [
        ("bob@petrel.test", false, Destination.local),
        ("bob@PETREL.test", false, .local),
        ("bob@bücher.test", false, .domain("xn--bcher-kva.test")),
        ("bob@remote.test", false, .domain("remote.test")),
        ("bob@Remote.TEST", false, .domain("remote.test")),
        ("bob@remote.test", true, .relay),
        ("bob@petrel.test", true, .local),
        ("bob@[192.0.2.1]", false, .addressLiteral),
        ("bob@[192.0.2.1]", true, .relay),
        ("bob@sub.petrel.test", false, .domain("sub.petrel.test")),
    ])
    func destination(_ address: String, _ relay: Bool, _ expected: Destination) throws {
        let mailbox = try #require(Mailbox(address))
        #expect(Destination(of: mailbox, localDomains: Self.local, relay: relay) == expected)
    }

    @Test func recipientsAreGroupedInTheOrderTheyCameAndCutAtFifty() {
        var recipients: [(index: Int, address: Mailbox)] = [(0, "a@remote.test"), (1, "b@petrel.test")]
        for index in 2..<122 { recipients.append((index, Mailbox("user\(index)@other.test")!)) }
        recipients.append((122, "c@remote.test"))
        let plan = DeliveryPlan(recipients: recipients, localDomains: Self.local, relay: false)
        #expect(
            plan.transactions.map(\.destination) == [
                .domain("remote.test"), .local, .domain("other.test"), .domain("other.test"), .domain("other.test"),
            ]
        )
        #expect(plan.transactions[0].indices == [0, 122])
        #expect(plan.transactions[1].indices == [1])
        #expect(plan.transactions[2...].map(\.indices.count) == [50, 50, 20])
        #expect(plan.transactions[2...].flatMap(\.indices) == Array(2..<122), "each recipient once, in order")
    }

    /// Our own domains are one transaction however many: one copy written, linked into each
    /// mailbox (two transactions of one message would also write one spool file side by side).
    @Test func localRecipientsAreOneTransaction() {
        let recipients = (0..<120).map { (index: $0, address: Mailbox("user\($0)@petrel.test")!) }
        let plan = DeliveryPlan(recipients: recipients, localDomains: Self.local, relay: false)
        #expect(plan.transactions == [DeliveryPlan.Transaction(destination: .local, indices: Array(0..<120))])
    }

    @Test func aRelayTakesEveryoneElse() {
        let plan = DeliveryPlan(
            recipients: [(0, "a@remote.test"), (1, "b@other.test"), (2, "c@petrel.test")],
            localDomains: Self.local,
            relay: true
        )
        #expect(
            plan.transactions == [
                .init(destination: .relay, indices: [0, 1]), .init(destination: .local, indices: [2]),
            ]
        )
    }

    static func entry(sender: ReversePath = "alice@petrel.test") -> QueueEntry {
        QueueEntry(
            id: "Q1",
            createdAt: 0,
            sender: sender,
            recipients: ["bob@remote.test"],
            smtpUTF8: false,
            body: nil,
            authenticatedUser: nil
        )
    }

    static let ledger = RecipientLedger(schedule: RetrySchedule(first: 300, ceiling: 3600, maximumAge: 900))

    @Test func deferredWaitsThenExpires() {
        var entry = Self.entry()
        let later = SMTPReply(451, EnhancedStatusCode(4, 7, 1), "greylisted")
        Self.ledger.settle(&entry.recipients[0], .deferred(later), remoteMTA: "mx.remote.test", entry: entry, now: 100)
        #expect(entry.recipients[0].state == .pending)
        #expect(entry.recipients[0].nextAttempt == 400)
        #expect(entry.recipients[0].status == "4.7.1")
        #expect(entry.recipients[0].lastError == "451 4.7.1 greylisted")
        #expect(entry.recipients[0].remoteMTA == "mx.remote.test")
        #expect(RecipientLedger.nextDue(entry) == 400)
        Self.ledger.settle(&entry.recipients[0], .deferred(later), remoteMTA: "mx.remote.test", entry: entry, now: 1000)
        #expect(entry.recipients[0].state == .failed)
        #expect(entry.recipients[0].status == "4.4.7")
        #expect(entry.recipients[0].lastError == "gave up after 1000 s: 451 4.7.1 greylisted")
        #expect(entry.recipients[0].notified == false, "to be reported")
        #expect(RecipientLedger.nextDue(entry) == 0, "the report is due now")
        #expect(entry.recipients[0].attempts == 2)
    }

    @Test func deliveredIsFinal() {
        var entry = Self.entry()
        Self.ledger.settle(
            &entry.recipients[0],
            .delivered(SMTPReply(250, EnhancedStatusCode(2, 0, 0), "ok")),
            remoteMTA: "mx.remote.test",
            entry: entry,
            now: 7
        )
        #expect(entry.recipients[0].state == .delivered && entry.recipients[0].status == "2.0.0")
        #expect(entry.recipients[0].lastError == nil && entry.recipients[0].nextAttempt == nil)
        #expect(RecipientLedger.nextDue(entry) == nil, "nothing left: the entry is removed")
    }

    @Test func failuresOfReportsAreNotReported() {
        var entry = Self.entry(sender: "")
        Self.ledger.settle(
            &entry.recipients[0],
            .failed(SMTPReply(550, EnhancedStatusCode(5, 1, 1), "no such user")),
            remoteMTA: nil,
            entry: entry,
            now: 5
        )
        #expect(entry.recipients[0].state == .failed && entry.recipients[0].notified == true)
        #expect(RecipientLedger.nextDue(entry) == nil, "nothing left: the entry is removed")
    }

    @Test func aFailureToReportIsDueAtOnce() {
        var entry = Self.entry()
        Self.ledger.settle(
            &entry.recipients[0],
            .failed(SMTPReply(550, EnhancedStatusCode(5, 1, 1), "no such user")),
            remoteMTA: nil,
            entry: entry,
            now: 5
        )
        #expect(entry.recipients[0].notified == false)
        #expect(RecipientLedger.nextDue(entry) == 0)
    }
}
