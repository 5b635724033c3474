import Foundation
import NIOCore
import NIOPosix
import PetrelTestSupport
import Testing

@testable import MailStore

@Suite struct GroupCommitTests {
    func files(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// Many sessions committing at once: every message is delivered once, complete, and nothing
    /// is left in incoming/; the batches together synced the mailbox directory fewer times than
    /// there were messages (at least two shared a batch).
    @Test func concurrentCommitsAreAllDurableAndShareBatches() async throws {
        let directory = try TemporaryDirectory()
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        let store = MessageStore(dataDirectory: directory.path + "/data", hostname: "mx.test", threadPool: pool)
        _ = try await store.prepare()
        let count = 200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    let message = store.beginMessage(id: "M\(index)", local: true, queued: index % 10 == 0)
                    await message.append(ByteBuffer(string: "Subject: \(index)\r\n\r\nbody \(index)\r\n"))
                    try await message.commit(
                        header: "Return-Path: <a@b>\r\n",
                        to: ["alice@example.test"],
                        queueEntry: index % 10 == 0
                            ? QueueEntry(
                                id: "M\(index)",
                                createdAt: 0,
                                sender: "a@b",
                                recipients: ["x@remote.test"],
                                smtpUTF8: false,
                                body: nil,
                                authenticatedUser: nil
                            )
                            : nil
                    )
                }
            }
            try await group.waitForAll()
        }
        let new = store.maildirs.path(for: "alice@example.test") + "/new"
        let names = self.files(new)
        #expect(names.count == count)
        var bodies = Set<String>()
        for name in names {
            let text = try String(contentsOfFile: new + "/" + name, encoding: .utf8)
            bodies.insert(text)
        }
        #expect(bodies == Set((0..<count).map { "Return-Path: <a@b>\nSubject: \($0)\n\nbody \($0)\n" }))
        #expect(self.files(store.incomingDirectory).isEmpty)
        #expect(try store.queue.entries().count == count / 10)
        #expect(store.groupCommit.batches < count, "no two commits ever shared a batch")
        try await pool.shutdownGracefully()
    }

    /// A job that fails (here: its publication throws) fails alone; the others in its batch are
    /// durable, and the failed one's files are gone.
    @Test func oneFailureFailsOnlyItsOwnMessage() throws {
        let directory = try TemporaryDirectory()
        let spool = directory.path
        func job(_ name: String, failing: Bool) -> GroupCommit.Job {
            GroupCommit.Job(
                prepare: { () throws(StoreError) in
                    let file = try SpoolFile(path: spool + "/" + name, unixLineEnds: false)
                    try file.write(ByteBuffer(string: "content\r\n"), final: true)
                    return [file]
                },
                publish: { files throws(StoreError) in
                    if failing { throw StoreError.io(operation: "link", path: name, errno: EIO) }
                    try POSIXFile.link(files[0].path, spool + "/" + name + ".published")
                    return GroupCommit.Publication(directories: [spool], undo: {}, done: {})
                }
            )
        }
        let failures = GroupCommit.run([job("a", failing: false), job("b", failing: true), job("c", failing: false)])
        #expect(failures[0] == nil && failures[2] == nil)
        #expect(failures[1] == StoreError.io(operation: "link", path: "b", errno: EIO))
        #expect(self.files(spool) == ["a", "a.published", "c", "c.published"])
    }

    /// When a directory cannot be synced, the messages published into it are taken back.
    @Test func aDirectoryThatCannotBeSyncedUndoesItsMessages() throws {
        let directory = try TemporaryDirectory()
        let spool = directory.path
        let undone = UndoRecord()
        let job = GroupCommit.Job(
            prepare: { () throws(StoreError) in
                let file = try SpoolFile(path: spool + "/m", unixLineEnds: false)
                try file.write(ByteBuffer(string: "content\r\n"), final: true)
                return [file]
            },
            publish: { _ throws(StoreError) in
                GroupCommit.Publication(directories: [spool + "/missing"], undo: { undone.mark() }, done: {})
            }
        )
        let failures = GroupCommit.run([job])
        #expect(failures[0] != nil)
        #expect(undone.marked)
        #expect(self.files(spool).isEmpty, "the failed message's spool file is removed")
    }
}

final class UndoRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var marked: Bool { self.lock.withLock { self.value } }
    func mark() { self.lock.withLock { self.value = true } }
}
