import Accounts
import MailCore
import MailStore
import NIOConcurrencyHelpers
import PetrelTestSupport
import SMTPCore
import Testing

@testable import Delivery

/// Accounts in dictionaries, behind the same seam as the SQLite store.
struct MemoryAccounts: AccountDirectory, DirectoryLookup {
    var mailboxes: [String] = []
    var aliases: [String: [String]] = [:]
    /// When set, every lookup fails (the database is unreadable).
    var broken = false

    struct Broken: Error {}

    func isMailbox(_ address: AccountAddress) -> Bool { self.mailboxes.contains(address.description) }
    func aliasTargets(_ address: AccountAddress) -> [AccountAddress]? {
        self.aliases[address.description].map { $0.map { try! AccountAddress(validating: $0) } }
    }
    func firstMailbox(inDomain domain: String) -> AccountAddress? { nil }

    func resolve(_ path: ForwardPath, with resolver: RecipientResolver) async throws -> Resolution {
        guard !self.broken else { throw Broken() }
        return try resolver.resolve(path, in: self)
    }
    func may(
        _ user: AccountAddress,
        sendAs address: AccountAddress,
        with resolver: RecipientResolver
    ) async throws
        -> Bool
    { false }
    func passwordCredentials(for address: AccountAddress) async throws -> PasswordCredentials? { nil }
    func settings(for address: AccountAddress) async throws -> MailboxSettings? {
        self.isMailbox(address) ? MailboxSettings() : nil
    }
    func secret(named name: String, length: Int) throws -> [UInt8] { Array(repeating: 7, count: length) }
}

/// Mailboxes that record what was delivered to them.
final class MemoryMailboxes: MailboxStore {
    let deliveries = NIOLockedValueBox<[(id: String, mailboxes: [String], text: String)]>([])
    let failure = NIOLockedValueBox<StoreError?>(nil)

    func deliver(_ content: any MessageContent, id: String, to mailboxes: [String]) async throws(StoreError) {
        if let failure = self.failure.withLockedValue({ $0 }) { throw failure }
        var bytes: [UInt8] = []
        while let block = try? await content.read(at: bytes.count, count: 7), !block.isEmpty { bytes += block }
        let text = String(decoding: bytes, as: UTF8.self)
        self.deliveries.withLockedValue { $0.append((id, mailboxes, text)) }
    }
}

/// The local courier over in-memory accounts and mailboxes: aliases resolved, each mailbox
/// written once, and every recipient's result.
struct LocalCourierTests {
    let accounts = MemoryAccounts(
        mailboxes: ["alice@petrel.test", "bob@petrel.test"],
        aliases: ["team@petrel.test": ["alice@petrel.test", "bob@petrel.test"]]
    )
    let mailboxes = MemoryMailboxes()
    let resolver = RecipientResolver(domains: ["petrel.test"])
    static let message = "Return-Path: <>\r\nSubject: report\r\n\r\nbody\r\n"
    let queue: InMemoryQueue = {
        let queue = InMemoryQueue()
        let entry = QueueEntry(
            id: "Q1",
            createdAt: 0,
            sender: "",
            recipients: ["alice@petrel.test"],
            smtpUTF8: false,
            body: nil,
            authenticatedUser: nil
        )
        queue.put(entry, message: LocalCourierTests.message)
        return queue
    }()

    func deliver(_ recipients: [Mailbox], accounts: MemoryAccounts? = nil) async -> [String] {
        let courier = LocalCourier(
            accounts: accounts ?? self.accounts,
            resolver: self.resolver,
            queue: self.queue,
            mailboxes: self.mailboxes
        )
        let parcel = Parcel(
            id: "Q1",
            sender: "",
            recipients: recipients,
            destination: .local,
            message: QueuedMessage(
                queue: InMemoryQueue(),
                id: "Q1",
                header: HeaderSection(fields: []),
                head: [],
                bodyOffset: 0,
                size: 0
            ),
            size: 0,
            eightBit: false,
            smtpUTF8: false
        )
        let report = await courier.deliver(parcel)
        #expect(report.tries.map(\.via) == ["local"])
        return report.results.map {
            switch $0 {
            case .delivered(let reply): "delivered \(reply.logText)"
            case .deferred(let reply): "deferred \(reply.logText)"
            case .failed(let reply): "failed \(reply.logText)"
            }
        }
    }

    @Test func aliasesAreResolvedAndEachMailboxWrittenOnce() async {
        let results = await self.deliver([
            "alice@petrel.test", "team@petrel.test", "nobody@petrel.test", "someone@elsewhere.test",
        ])
        #expect(
            results == [
                "delivered 250 2.0.0 delivered to a mailbox", "delivered 250 2.0.0 delivered to a mailbox",
                "failed 550 5.1.1 user unknown", "failed 550 5.1.2 not a local domain",
            ]
        )
        let deliveries = self.mailboxes.deliveries.withLockedValue { $0 }
        #expect(deliveries.map(\.id) == ["Q1"])
        #expect(deliveries.map(\.mailboxes) == [["alice@petrel.test", "bob@petrel.test"]])
        #expect(deliveries.map(\.text) == [Self.message], "the queued content whole, Return-Path included")
    }

    @Test func aFullDiskDefersWhatWouldHaveBeenDelivered() async {
        self.mailboxes.failure.withLockedValue { $0 = .insufficientStorage(path: "/data/mail") }
        let results = await self.deliver(["alice@petrel.test", "nobody@petrel.test"])
        #expect(results[0] == "deferred 452 4.3.1 Insufficient system storage; try again later")
        #expect(results[1] == "failed 550 5.1.1 user unknown")
    }

    @Test func anUnreadableAccountDatabaseDefers() async {
        var broken = self.accounts
        broken.broken = true
        let results = await self.deliver(["alice@petrel.test"], accounts: broken)
        #expect(results == ["deferred 451 4.3.0 account lookup failed"])
        #expect(self.mailboxes.deliveries.withLockedValue { $0 }.isEmpty)
    }

    @Test func aMessageGoneFromTheQueueDefers() async {
        self.queue.state.withLockedValue { $0.messages["Q1"] = nil }
        let results = await self.deliver(["alice@petrel.test"])
        #expect(results == ["deferred 451 4.3.0 Local error in processing; try again later"])
    }
}
