import Accounts
import Foundation
import MailCore
import Testing

@Suite struct AccountStoreTests {
    let path: String

    init() {
        self.path = "/tmp/petrel-accounts-\(UInt64.random(in: 0...UInt64.max)).sqlite"
    }

    func address(_ text: String) throws -> AccountAddress { try AccountAddress(validating: text) }

    func cleanUp() {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: self.path + suffix) }
    }

    /// A named secret is made once and the same ever after, also for a second opening of the
    /// database (a restart, another process).
    @Test func secretsAreStable() throws {
        defer { self.cleanUp() }
        let first = try AccountStore(path: self.path).secret(named: "scram-decoy")
        #expect(first.count == 32)
        #expect(try AccountStore(path: self.path).secret(named: "scram-decoy") == first)
        #expect(try AccountStore(path: self.path).secret(named: "another") != first)
    }

    /// A mailbox's settings (quota, IMAP switches) round-trip, and are nil for no mailbox.
    @Test func settingsAreKeptWithTheMailbox() async throws {
        defer { self.cleanUp() }
        let store = try AccountStore(path: self.path)
        let alice = try self.address("alice@example.test")
        try store.addMailbox(alice, password: nil)
        #expect(try await store.settings(for: alice) == MailboxSettings())
        let settings = MailboxSettings(
            storageQuota: 5 << 30,
            disabledIMAPCapabilities: ["QRESYNC", "COMPRESS=DEFLATE"]
        )
        try store.setSettings(settings, for: alice)
        #expect(try AccountStore(path: self.path).readSettings(for: alice) == settings)
        try store.setSettings(MailboxSettings(storageQuota: 0), for: alice)
        #expect(try await store.settings(for: alice)?.storageQuota == 0)
        #expect(try await store.settings(for: self.address("nobody@example.test")) == nil)
        #expect(throws: AccountError.self) { try store.setSettings(settings, for: self.address("nobody@example.test")) }
    }

    /// Sender addresses widen what a user may send as; they go with the mailbox.
    @Test func senderAddresses() async throws {
        defer { self.cleanUp() }
        let store = try AccountStore(path: self.path)
        let resolver = RecipientResolver(domains: ["example.test"], postmaster: nil, recipientDelimiter: "+")
        let alice = try self.address("alice@example.test")
        try store.addMailbox(alice, password: nil)
        try store.addMailbox(self.address("bob@example.test"), password: nil)
        try store.addAlias(self.address("team@example.test"), targets: [alice])
        func may(_ address: String) async throws -> Bool {
            try await store.may(alice, sendAs: self.address(address), with: resolver)
        }
        for address in ["alice@example.test", "ALICE+tag@example.test", "team@example.test"] {
            #expect(try await may(address), "\(address)")
        }
        for address in ["bob@example.test", "ceo@example.test", "alice@other.test"] {
            #expect(try await !may(address), "\(address)")
        }
        try store.addSenderAddress(SenderAddress(validating: "CEO@Example.test"), for: alice)
        #expect(try await may("ceo@example.test"))
        #expect(try await !may("bob@example.test"))
        try store.addSenderAddress(SenderAddress(validating: "@other.test"), for: alice)
        #expect(try await may("anyone@other.test"))
        #expect(try await !may("anyone@another.test"))
        #expect(try store.listSenderAddresses(for: alice).map(\.description) == ["@other.test", "ceo@example.test"])
        try store.removeSenderAddress(SenderAddress(validating: "ceo@example.test"), for: alice)
        #expect(try await !may("ceo@example.test"))
        #expect(throws: AccountError.notFound("sender address ceo@example.test of alice@example.test")) {
            try store.removeSenderAddress(SenderAddress(validating: "ceo@example.test"), for: alice)
        }
        #expect(throws: AccountError.notFound("nobody@example.test")) {
            try store.addSenderAddress(
                SenderAddress(validating: "x@example.test"),
                for: self.address("nobody@example.test")
            )
        }
        #expect(throws: AccountError.self) { try SenderAddress(validating: "@not a domain") }
        try store.removeMailbox(alice)
        try store.addMailbox(alice, password: nil)
        #expect(try store.listSenderAddresses(for: alice).isEmpty, "removed with the mailbox")
    }

    @Test func mailboxesAndAliases() throws {
        defer { self.cleanUp() }
        let store = try AccountStore(path: self.path)
        try store.addMailbox(self.address("bob@example.test"), password: nil)
        try store.addMailbox(
            self.address("alice@example.test"),
            password: PasswordCredentials(cryptHash: "$y$hash", scram: nil)
        )
        #expect(throws: AccountError.alreadyExists("alice@example.test")) {
            try store.addMailbox(self.address("Alice@Example.test"), password: nil)
        }
        #expect(try store.mailboxes().map(\.address.description) == ["alice@example.test", "bob@example.test"])
        #expect(try store.mailboxes().map(\.hasPassword) == [true, false])

        try store.addAlias(
            self.address("info@example.test"),
            targets: [self.address("bob@example.test"), self.address("alice@example.test")]
        )
        #expect(throws: AccountError.alreadyExists("alice@example.test")) {
            try store.addAlias(self.address("alice@example.test"), targets: [self.address("bob@example.test")])
        }
        #expect(throws: AccountError.alreadyExists("info@example.test")) {
            try store.addMailbox(self.address("info@example.test"), password: nil)
        }
        #expect(
            try store.aliases() == [
                Alias(
                    address: self.address("info@example.test"),
                    targets: [self.address("bob@example.test"), self.address("alice@example.test")]
                )
            ]
        )

        #expect(try store.removeMailbox(self.address("bob@example.test")) == [self.address("info@example.test")])
        #expect(throws: AccountError.notFound("bob@example.test")) {
            try store.removeMailbox(self.address("bob@example.test"))
        }
        try store.removeAlias(self.address("info@example.test"))
        #expect(try store.aliases().isEmpty)
        #expect(throws: AccountError.notFound("info@example.test")) {
            try store.removeAlias(self.address("info@example.test"))
        }
    }

    @Test func resolutionUsesTheStore() async throws {
        defer { self.cleanUp() }
        let store = try AccountStore(path: self.path)
        let resolver = RecipientResolver(domains: ["example.test"])
        let alicePath = ForwardPath.mailbox(Mailbox("alice+news@example.test")!)
        #expect(try await store.resolve(alicePath, with: resolver) == .unknownUser)
        #expect(
            try await store.resolve(.postmaster, with: resolver)
                == .mailboxes([self.address("postmaster@example.test")])
        )
        try store.addMailbox(self.address("alice@example.test"), password: nil)
        #expect(try await store.resolve(alicePath, with: resolver) == .mailboxes([self.address("alice@example.test")]))
        #expect(
            try await store.resolve(.postmaster, with: resolver) == .mailboxes([self.address("alice@example.test")])
        )
    }

    /// The CLI and the server are different processes with their own connections: a change made
    /// through one is seen by the other at once.
    @Test func aSecondConnectionSeesChangesImmediately() async throws {
        defer { self.cleanUp() }
        let server = try AccountStore(path: self.path)
        let cli = try AccountStore(path: self.path)
        let resolver = RecipientResolver(domains: ["example.test"])
        let path = ForwardPath.mailbox(Mailbox("carol@example.test")!)
        #expect(try await server.resolve(path, with: resolver) == .unknownUser)
        try cli.addMailbox(self.address("carol@example.test"), password: nil)
        #expect(try await server.resolve(path, with: resolver) == .mailboxes([self.address("carol@example.test")]))
        try cli.removeMailbox(self.address("carol@example.test"))
        #expect(try await server.resolve(path, with: resolver) == .unknownUser)
    }
}
