import Foundation
import MailCore
import NIOCore
import NIOPosix
import Testing

@testable import MailStore

/// A fresh directory under /tmp, removed at the end.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/petrel-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw POSIXError(.EIO) }
        self.path = String(cString: created)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}

@Suite struct MessageStoreTests {
    let directory: TemporaryDirectory
    let pool: NIOThreadPool
    let store: MessageStore

    init() throws {
        self.directory = try TemporaryDirectory()
        self.pool = NIOThreadPool(numberOfThreads: 2)
        self.pool.start()
        self.store = MessageStore(
            dataDirectory: self.directory.path + "/data",
            hostname: "mx.test",
            threadPool: self.pool
        )
    }

    func files(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    @Test func commitLinksOneFileIntoEveryMailbox() async throws {
        #expect(try await self.store.prepare() == MessageStore.Preparation())
        let message = try await self.store.createMessage(
            id: "ID1",
            header: "Return-Path: <a@b>\r\n",
            local: true,
            queued: false
        )
        await message.append(ByteBuffer(string: "Subject: hi\r\n\r\nbody\r"))
        await message.append(ByteBuffer(string: "\nlast\r\n"))
        try await message.commit(to: ["alice@example.test", "bob@example.test"], queueEntry: nil)
        let paths = ["alice@example.test", "bob@example.test"].flatMap { mailbox in
            self.files(self.store.maildirs.path(for: mailbox) + "/new").map {
                self.store.maildirs.path(for: mailbox) + "/new/" + $0
            }
        }
        #expect(paths.count == 2)
        let expected = "Return-Path: <a@b>\nSubject: hi\n\nbody\nlast\n"
        for path in paths {
            #expect(try String(contentsOfFile: path, encoding: .utf8) == expected)
            #expect(path.contains("QID1.mx.test,S=\(expected.utf8.count)"))
        }
        let first = try FileManager.default.attributesOfItem(atPath: paths[0])[.systemFileNumber] as? Int
        let second = try FileManager.default.attributesOfItem(atPath: paths[1])[.systemFileNumber] as? Int
        #expect(first == second, "one inode, hard-linked")
        for mailbox in ["alice@example.test", "bob@example.test"] {
            #expect(self.files(self.store.maildirs.path(for: mailbox)) == ["cur", "new", "tmp"])
            #expect(self.files(self.store.maildirs.path(for: mailbox) + "/new").count == 1)
        }
        #expect(self.files(self.store.incomingDirectory).isEmpty)
        try await self.pool.shutdownGracefully()
    }

    @Test func discardLeavesNothing() async throws {
        _ = try await self.store.prepare()
        let message = try await self.store.createMessage(id: "ID2", header: "X: y\r\n", local: true, queued: true)
        await message.append(ByteBuffer(string: String(repeating: "z", count: 200_000)))
        #expect(self.files(self.store.incomingDirectory) == ["ID2", "ID2.eml"])
        await message.discard()
        #expect(self.files(self.store.incomingDirectory).isEmpty)
        #expect(self.files(self.store.maildirs.mailRoot).isEmpty)
        try await self.pool.shutdownGracefully()
    }

    @Test func prepareRemovesLeftoversOfAnEarlierRun() async throws {
        _ = try await self.store.prepare()
        _ = FileManager.default.createFile(atPath: self.store.incomingDirectory + "/OLD1", contents: Data("half".utf8))
        _ = FileManager.default.createFile(atPath: self.store.incomingDirectory + "/OLD2", contents: Data("half".utf8))
        #expect(try await self.store.prepare().removedIncoming == 2)
        #expect(self.files(self.store.incomingDirectory).isEmpty)
        try await self.pool.shutdownGracefully()
    }

    @Test(arguments: ["", "../escape@example.test", "a/b@example.test", ".hidden@example.test"])
    func unsafeMailboxNamesAreRefusedAndNothingStays(_ name: String) async throws {
        _ = try await self.store.prepare()
        let message = try await self.store.createMessage(id: "ID3", header: "X: y\r\n", local: true, queued: false)
        await #expect(throws: StoreError.self) {
            try await message.commit(to: ["good@example.test", name], queueEntry: nil)
        }
        #expect(
            self.files(self.store.maildirs.path(for: "good@example.test") + "/new").isEmpty,
            "the first link is taken back"
        )
        #expect(self.files(self.store.incomingDirectory).isEmpty)
        try await self.pool.shutdownGracefully()
    }

    @Test func aRemovedMaildirIsMadeAgain() async throws {
        _ = try await self.store.prepare()
        let first = try await self.store.createMessage(id: "ID4", header: "", local: true, queued: false)
        try await first.commit(to: ["alice@example.test"], queueEntry: nil)
        try FileManager.default.removeItem(atPath: self.store.maildirs.path(for: "alice@example.test"))
        let second = try await self.store.createMessage(id: "ID5", header: "", local: true, queued: false)
        try await second.commit(to: ["alice@example.test"], queueEntry: nil)
        #expect(self.files(self.store.maildirs.path(for: "alice@example.test") + "/new").count == 1)
        try await self.pool.shutdownGracefully()
    }

    /// A full disk is reported as insufficient storage, and nothing is left behind. Needs root to
    /// mount a small tmpfs; skipped otherwise.
    @Test func fullDiskIsInsufficientStorage() async throws {
        let mountPoint = self.directory.path + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mountPoint]) else {
            try await self.pool.shutdownGracefully()
            return
        }
        defer { _ = run("/bin/umount", [mountPoint]) }
        let store = MessageStore(dataDirectory: mountPoint + "/data", hostname: "mx.test", threadPool: self.pool)
        _ = try await store.prepare()
        let message = try await store.createMessage(id: "BIG", header: "", local: true, queued: false)
        for _ in 0..<10 { await message.append(ByteBuffer(string: String(repeating: "x", count: 65_536))) }
        await #expect(throws: StoreError.insufficientStorage(path: store.incomingDirectory + "/BIG")) {
            try await message.commit(to: ["alice@example.test"], queueEntry: nil)
        }
        #expect(self.files(store.incomingDirectory).isEmpty)
        #expect(self.files(store.maildirs.path(for: "alice@example.test") + "/new").isEmpty)
        // Once there is room again, mail flows.
        let small = try await store.createMessage(id: "SMALL", header: "X: y\r\n", local: true, queued: false)
        try await small.commit(to: ["alice@example.test"], queueEntry: nil)
        #expect(self.files(store.maildirs.path(for: "alice@example.test") + "/new").count == 1)
        try await self.pool.shutdownGracefully()
    }
}

@Suite struct OutboundQueueTests {
    let directory: TemporaryDirectory
    let pool: NIOThreadPool
    let store: MessageStore

    init() throws {
        self.directory = try TemporaryDirectory()
        self.pool = NIOThreadPool(numberOfThreads: 2)
        self.pool.start()
        self.store = MessageStore(
            dataDirectory: self.directory.path + "/data",
            hostname: "mx.test",
            threadPool: self.pool
        )
    }

    func entry(_ id: String) -> QueueEntry {
        QueueEntry(
            id: id,
            createdAt: 1_795_945_306,
            sender: "alice@example.test",
            recipients: ["bob@remote.example", "carol@remote.example"],
            smtpUTF8: false,
            body: "8BITMIME",
            authenticatedUser: "alice@example.test"
        )
    }

    /// One message to a local mailbox and to remote recipients: an LF copy in the Maildir, the
    /// CRLF original in the queue with its envelope.
    @Test func mixedLocalAndRemote() async throws {
        _ = try await self.store.prepare()
        let message = try await self.store.createMessage(id: "Q1", header: "Received: x\r\n", local: true, queued: true)
        await message.append(ByteBuffer(string: "Subject: hi\r\n\r\nbody\r\n"))
        try await message.commit(to: ["dave@example.test"], queueEntry: self.entry("Q1"))
        let maildir = self.store.maildirs.path(for: "dave@example.test") + "/new"
        let local = try FileManager.default.contentsOfDirectory(atPath: maildir)
        #expect(
            try String(contentsOfFile: maildir + "/" + local[0], encoding: .utf8)
                == "Received: x\nSubject: hi\n\nbody\n"
        )
        let queued = try String(contentsOfFile: self.store.queue.directory + "/Q1.eml", encoding: .utf8)
        #expect(queued == "Received: x\r\nSubject: hi\r\n\r\nbody\r\n")
        var expected = self.entry("Q1")
        expected.size = queued.utf8.count
        #expect(try self.store.queue.entries() == [expected])
        #expect(try FileManager.default.contentsOfDirectory(atPath: self.store.incomingDirectory).isEmpty)
        try await self.pool.shutdownGracefully()
    }

    /// What a crash can leave: a message without its envelope, a half-written envelope in tmp/,
    /// an envelope nobody can read. Start-up removes the first two and sets the last aside.
    @Test func recoveryAfterACrash() async throws {
        _ = try await self.store.prepare()
        let message = try await self.store.createMessage(id: "KEEP", header: "", local: false, queued: true)
        await message.append(ByteBuffer(string: "Subject: keep\r\n\r\n"))
        try await message.commit(to: [], queueEntry: self.entry("KEEP"))
        let queue = self.store.queue.directory
        _ = FileManager.default.createFile(atPath: queue + "/HALF.eml", contents: Data("Subject: half".utf8))
        _ = FileManager.default.createFile(atPath: queue + "/tmp/HALF2.envelope", contents: Data("{\"vers".utf8))
        _ = FileManager.default.createFile(atPath: queue + "/BAD.eml", contents: Data("x".utf8))
        _ = FileManager.default.createFile(atPath: queue + "/BAD.envelope", contents: Data("not json".utf8))
        let preparation = try await self.store.prepare()
        #expect(preparation.queue == OutboundQueue.Recovery(entries: 1, removedUnfinished: 2, setAsideCorrupt: 1))
        #expect(try self.store.queue.entries().map(\.id) == ["KEEP"])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: queue + "/corrupt").sorted() == [
                "BAD.eml", "BAD.envelope",
            ]
        )
        try await self.pool.shutdownGracefully()
    }

    @Test func envelopeFormatIsStable() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var entry = self.entry("01KB7Z3XQ4M2A7")
        entry.recipients = [QueueEntry.Recipient(address: "bob@remote.example")]
        #expect(
            String(decoding: try encoder.encode(entry), as: UTF8.self)
                == #"{"authenticatedUser":"alice@example.test","body":"8BITMIME","createdAt":1795945306,"id":"01KB7Z3XQ4M2A7","#
                + #""recipients":[{"address":"bob@remote.example","attempts":0,"state":"pending"}],"sender":"alice@example.test","#
                + #""size":0,"smtpUTF8":false,"version":1}"#
        )
    }
}

func run(_ executable: String, _ arguments: [String]) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardError = FileHandle.nullDevice
    do {
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    } catch {
        return false
    }
}
