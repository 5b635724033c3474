import Foundation
import NIOCore
import PetrelTestSupport
import Testing

@testable import MailStore

/// The outbound queue, through the store that writes into it (same fixture as the Maildir tests).
extension MessageStoreTests {
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
        let message = self.store.beginMessage(id: "Q1", local: true, queued: true)
        await message.append(ByteBuffer(string: "Subject: hi\r\n\r\nbody\r\n"))
        try await message.commit(header: "Received: x\r\n", to: ["dave@example.test"], queueEntry: self.entry("Q1"))
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
        let message = self.store.beginMessage(id: "KEEP", local: false, queued: true)
        await message.append(ByteBuffer(string: "Subject: keep\r\n\r\n"))
        try await message.commit(header: "X: y\r\n", to: [], queueEntry: self.entry("KEEP"))
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

/// `petrel sendmail`'s pickup directory, and the queue's own bookkeeping for the runner and the CLI.
extension MessageStoreTests {
    @Test func pickupIsAdoptedAtStartAndOnRequest() async throws {
        let pickup = self.store.pickupDirectory
        let queue = self.store.queue
        try FileManager.default.createDirectory(atPath: queue.directory, withIntermediateDirectories: true)
        // Left while no server ran: taken at start-up.
        try OutboundQueue.drop(message: Array("Subject: a\r\n\r\nx\r\n".utf8), entry: self.entry("P1"), into: pickup)
        // An adoption a crash cut in half: the message moved, the envelope still in pickup.
        try OutboundQueue.drop(message: Array("Subject: b\r\n\r\ny\r\n".utf8), entry: self.entry("P2"), into: pickup)
        try FileManager.default.moveItem(atPath: pickup + "/P2.eml", toPath: queue.directory + "/P2.eml")
        let preparation = try await self.store.prepare()
        #expect(preparation.queue.adopted == 2)
        #expect(try queue.entries().map(\.id) == ["P1", "P2"])
        #expect(try String(contentsOfFile: queue.messagePath("P2"), encoding: .utf8) == "Subject: b\r\n\r\ny\r\n")
        // An id already queued is never replaced: it stays in pickup for a human.
        try OutboundQueue.drop(message: Array("Subject: c\r\n\r\nz\r\n".utf8), entry: self.entry("P1"), into: pickup)
        #expect(try queue.adopt(from: pickup).isEmpty)
        #expect(try String(contentsOfFile: queue.messagePath("P1"), encoding: .utf8) == "Subject: a\r\n\r\nx\r\n")
        #expect(FileManager.default.fileExists(atPath: pickup + "/P1.envelope"))
        // Removal: the envelope goes first; retry and bounce change only waiting recipients.
        var entry = try queue.entry("P2")
        entry.recipients[0].state = .delivered
        try queue.update(entry)
        #expect(try queue.perform(.bounce, id: "P2", now: 42))
        let bounced = try queue.entry("P2")
        #expect(bounced.recipients.map(\.state) == [.delivered, .failed])
        #expect(bounced.recipients[1].notified == false && bounced.recipients[1].lastAttempt == 42)
        #expect(try queue.perform(.delete, id: "P2", now: 42))
        #expect(!FileManager.default.fileExists(atPath: queue.messagePath("P2")))
        #expect(try queue.perform(.delete, id: "P2", now: 42) == false)
        try await self.pool.shutdownGracefully()
    }
}
