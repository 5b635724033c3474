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
        let message = self.store.beginMessage(id: "ID1", local: true, queued: false)
        await message.append(ByteBuffer(string: "Subject: hi\r\n\r\nbody\r"))
        await message.append(ByteBuffer(string: "\nlast\r\n"))
        try await message.commit(
            header: "Return-Path: <a@b>\r\n",
            to: ["alice@example.test", "bob@example.test"],
            queueEntry: nil
        )
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

    /// Octets in memory, read in small blocks so that deliveries interleave.
    struct BytesContent: MessageContent {
        let bytes: [UInt8]
        var size: Int { self.bytes.count }
        func read(at offset: Int, count: Int) async throws -> [UInt8] {
            await Task.yield()
            return Array(self.bytes[min(offset, self.bytes.count)..<min(offset + min(count, 7), self.bytes.count)])
        }
        func close() {}
    }

    /// Deliveries of one message side by side (a queue engine may hand it out twice) each
    /// write a spool file of their own: every mailbox gets the whole message.
    @Test func deliveriesOfOneMessageAtOnceEachGetTheWholeMessage() async throws {
        _ = try await self.store.prepare()
        let text = "Return-Path: <a@b>\r\nSubject: hi\r\n\r\n" + String(repeating: "line of the body\r\n", count: 40)
        let content = BytesContent(bytes: Array(text.utf8))
        let mailboxes = (0..<8).map { "user\($0)@example.test" }
        let store = self.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            for mailbox in mailboxes {
                group.addTask { try await store.deliver(content, id: "ID9", to: [mailbox]) }
            }
            try await group.waitForAll()
        }
        let expected = text.replacingOccurrences(of: "\r\n", with: "\n")
        for mailbox in mailboxes {
            let new = self.store.maildirs.path(for: mailbox) + "/new"
            let names = self.files(new)
            #expect(names.count == 1, "\(mailbox)")
            for name in names { #expect(try String(contentsOfFile: new + "/" + name, encoding: .utf8) == expected) }
        }
        #expect(self.files(self.store.incomingDirectory).isEmpty)
        try await self.pool.shutdownGracefully()
    }

    @Test func discardLeavesNothing() async throws {
        _ = try await self.store.prepare()
        let message = self.store.beginMessage(id: "ID2", local: true, queued: true)
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
        let message = self.store.beginMessage(id: "ID3", local: true, queued: false)
        await #expect(throws: StoreError.self) {
            try await message.commit(header: "X: y\r\n", to: ["good@example.test", name], queueEntry: nil)
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
        let first = self.store.beginMessage(id: "ID4", local: true, queued: false)
        try await first.commit(header: "X: y\r\n", to: ["alice@example.test"], queueEntry: nil)
        try FileManager.default.removeItem(atPath: self.store.maildirs.path(for: "alice@example.test"))
        let second = self.store.beginMessage(id: "ID5", local: true, queued: false)
        try await second.commit(header: "X: y\r\n", to: ["alice@example.test"], queueEntry: nil)
        #expect(self.files(self.store.maildirs.path(for: "alice@example.test") + "/new").count == 1)
        try await self.pool.shutdownGracefully()
    }

    /// A message larger than what is held in memory gets its header in front all the same, in
    /// both copies (LF for the Maildir, CRLF for the queue); and a Junk delivery makes the
    /// Maildir++ folder.
    @Test func headerIsPrependedToLargeMessagesAndJunkGoesToItsFolder() async throws {
        _ = try await self.store.prepare()
        let message = self.store.beginMessage(id: "LARGE", local: true, queued: true)
        let line = String(repeating: "y", count: 998) + "\r\n"
        await message.append(ByteBuffer(string: "Subject: big\r\n\r\n"))
        for _ in 0..<200 { await message.append(ByteBuffer(string: line)) }
        let header = "Received: from a by b\r\nAuthentication-Results: mx.test; none\r\n"
        try await message.commit(
            header: header,
            to: ["carol@example.test"],
            folder: ".Junk",
            queueEntry: self.entry("LARGE")
        )
        let junk = self.store.maildirs.path(for: "carol@example.test") + "/.Junk"
        let delivered = self.files(junk + "/new")
        try #require(delivered.count == 1)
        let body = String(repeating: String(repeating: "y", count: 998) + "\n", count: 200)
        let expected = "Received: from a by b\nAuthentication-Results: mx.test; none\nSubject: big\n\n" + body
        #expect(try String(contentsOfFile: junk + "/new/" + delivered[0], encoding: .utf8) == expected)
        #expect(delivered[0].hasSuffix(",S=\(expected.utf8.count)"))
        #expect(FileManager.default.fileExists(atPath: junk + "/maildirfolder"))
        #expect(self.files(self.store.maildirs.path(for: "carol@example.test") + "/new").isEmpty, "not in the inbox")
        let queued = self.files(self.store.queue.directory).filter { $0.hasSuffix(".eml") }
        try #require(queued.count == 1)
        let crlf = try String(contentsOfFile: self.store.queue.directory + "/" + queued[0], encoding: .utf8)
        #expect(crlf == expected.replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(self.files(self.store.incomingDirectory).isEmpty)
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
        let message = store.beginMessage(id: "BIG", local: true, queued: false)
        for _ in 0..<10 { await message.append(ByteBuffer(string: String(repeating: "x", count: 65_536))) }
        await #expect(throws: StoreError.insufficientStorage(path: store.incomingDirectory + "/BIG")) {
            try await message.commit(header: "X: y\r\n", to: ["alice@example.test"], queueEntry: nil)
        }
        #expect(self.files(store.incomingDirectory).isEmpty)
        #expect(self.files(store.maildirs.path(for: "alice@example.test") + "/new").isEmpty)
        // Once there is room again, mail flows.
        let small = store.beginMessage(id: "SMALL", local: true, queued: false)
        try await small.commit(header: "X: y\r\n", to: ["alice@example.test"], queueEntry: nil)
        #expect(self.files(store.maildirs.path(for: "alice@example.test") + "/new").count == 1)
        try await self.pool.shutdownGracefully()
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
