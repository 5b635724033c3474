import Foundation
import MailStore
import Testing

/// Several sessions on one mailbox, and mail delivered while a session waits in IDLE.
@Suite struct IMAPConcurrencyTests {
    struct Bytes: MessageContent {
        let bytes: [UInt8]
        var size: Int { self.bytes.count }
        func read(at offset: Int, count: Int) async throws -> [UInt8] {
            guard offset < self.bytes.count else { return [] }
            return Array(self.bytes[offset..<min(self.bytes.count, offset + count)])
        }
        func close() {}
    }

    static func select(_ harness: IMAPHarness) async throws {
        try await harness.login()
        let lines = try await harness.command("S SELECT INBOX")
        #expect(lines.last?.hasPrefix("S OK") == true, "\(lines)")
    }

    @Test func aDeliveryReachesASessionInIdleAtOnce() async throws {
        let harness = try await IMAPHarness()
        try await Self.select(harness)
        try await harness.send("I IDLE")
        #expect(await harness.line() == "+ idling")
        let started = ContinuousClock.now
        try await harness.store.deliver(
            Bytes(bytes: Array("Return-Path: <b@example.test>\r\nSubject: new\r\n\r\nhi\r\n".utf8)),
            id: "Q1",
            to: [IMAPHarness.user]
        )
        #expect(await harness.line(timeout: .seconds(2)) == "* 4 EXISTS")
        #expect(ContinuousClock.now - started < .seconds(1), "within a second of the delivery")
        try await harness.send("DONE")
        #expect(await harness.line() == "I OK IDLE done")
        await harness.close()
    }

    @Test func anExpungeWaitsWhileTheOtherSessionFetchesBySequenceNumber() async throws {
        let first = try await IMAPHarness()
        let second = try await IMAPHarness(sharing: first)
        try await Self.select(first)
        try await Self.select(second)
        #expect(try await second.command("a STORE 2 +FLAGS.SILENT (\\Deleted)").last == "a OK STORE done")
        #expect(try await second.command("b EXPUNGE") == ["* 2 EXPUNGE", "b OK EXPUNGE done"])
        // The first session still numbers three messages: FETCH may not tell it of the expunge,
        // and message 3 is still message 3.
        let fetched = try await first.command("c FETCH 1:3 (UID)")
        #expect(fetched == ["* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)", "c OK FETCH done"])
        let searched = try await first.command("d SEARCH ALL")
        #expect(searched == ["* SEARCH 1 3", "d OK SEARCH done"])
        // Now it may be told.
        #expect(try await first.command("e NOOP") == ["* 2 EXPUNGE", "e OK NOOP done"])
        #expect(try await first.command("f FETCH 2 (UID)") == ["* 2 FETCH (UID 3)", "f OK FETCH done"])
        await second.close()
        await first.close()
    }

    @Test func flagChangesOfOneSessionReachTheOther() async throws {
        let first = try await IMAPHarness()
        let second = try await IMAPHarness(sharing: first)
        try await Self.select(first)
        try await Self.select(second)
        try await first.send("I IDLE")
        #expect(await first.line() == "+ idling")
        _ = try await second.command("a STORE 1 +FLAGS.SILENT (\\Flagged)")
        #expect(await first.line(timeout: .seconds(2)) == "* 1 FETCH (UID 1 FLAGS (\\Flagged))")
        try await first.send("DONE")
        #expect(await first.line() == "I OK IDLE done")
        await second.close()
        await first.close()
    }

    @Test func appendsFromSeveralSessionsGetDistinctAscendingUIDs() async throws {
        let owner = try await IMAPHarness()
        var sessions = [owner]
        for _ in 0..<2 { sessions.append(try await IMAPHarness(sharing: owner)) }  // the harness's limit: 3
        for session in sessions { try await session.login() }
        let uids = try await withThrowingTaskGroup(of: [String].self) { group in
            for (index, session) in sessions.enumerated() {
                group.addTask {
                    var lines: [String] = []
                    for number in 0..<5 {
                        lines += try await session.command("A\(index)x\(number) APPEND INBOX {8+}\r\nX: y\r\n\r\n")
                    }
                    return lines
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let given = uids.compactMap { line -> UInt32? in
            guard let range = line.range(of: "[APPENDUID ") else { return nil }
            return UInt32(line[range.upperBound...].split(separator: " ")[1].dropLast())
        }
        #expect(given.count == 15)
        #expect(Set(given) == Set(4...18), "\(given.sorted())")
        let listed = try await owner.command("s STATUS INBOX (MESSAGES UIDNEXT)")
        #expect(listed.first == "* STATUS \"INBOX\" (MESSAGES 18 UIDNEXT 19)")
        for session in sessions.reversed() { await session.close() }
    }

    @Test func aLiteralOverTheAppendLimitIsRefusedBeforeItIsRead() async throws {
        let harness = try await IMAPHarness(appendLimit: 100)
        try await harness.login()
        try await harness.send("a APPEND INBOX {101}")
        #expect(await harness.line() == "a NO [TOOBIG] the message is larger than APPENDLIMIT (100)")
        // A non-synchronizing one is read and dropped; the session goes on.
        try await harness.send(Array(("b APPEND INBOX {101+}\r\n" + String(repeating: "x", count: 101) + "\r\n").utf8))
        #expect(await harness.line() == "b NO [TOOBIG] the message is larger than APPENDLIMIT (100)")
        #expect(try await harness.command("c NOOP") == ["c OK NOOP done"])
        await harness.close()
    }
}

extension IMAPConcurrencyTests {
    /// A message larger than a literal in memory streams to a file in incoming/ and becomes the
    /// message's file: nothing is left behind, what is served is what was sent.
    @Test func aLargeAppendStreamsToDisk() async throws {
        let harness = try await IMAPHarness()
        try await harness.login()
        var message = "Subject: large\r\n\r\n"
        for number in 0..<4_000 { message += "line \(number) of a message larger than 64 KiB\r\n" }
        let octets = Array(message.utf8)
        try await harness.send("a APPEND INBOX {\(octets.count)}")
        #expect(await harness.line() == "+ ready for the literal")
        // In pieces, as a network delivers it.
        var offset = 0
        while offset < octets.count {
            let end = min(octets.count, offset + 7_001)
            try await harness.send(Array(octets[offset..<end]))
            offset = end
        }
        try await harness.send(Array("\r\n".utf8))
        let reply = await harness.line()
        #expect(reply?.hasPrefix("a OK [APPENDUID ") == true, "\(reply ?? "nothing")")
        #expect(reply?.hasSuffix(" 4] APPEND done") == true)
        _ = try await harness.command("s SELECT INBOX")
        let size = try await harness.command("f FETCH 4 (RFC822.SIZE)")
        #expect(size.first == "* 4 FETCH (RFC822.SIZE \(octets.count))")
        let incoming = try FileManager.default.contentsOfDirectory(atPath: harness.directory + "/incoming")
        #expect(incoming.isEmpty, "\(incoming)")
        // An APPEND whose streamed message is followed by garbage leaves nothing either.
        try await harness.send("b APPEND INBOX {70000+}")
        try await harness.send(Array(repeating: UInt8(ascii: "x"), count: 70_000) + Array(" junk\r\n".utf8))
        #expect(await harness.line()?.hasPrefix("b BAD ") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: harness.directory + "/incoming").isEmpty)
        await harness.close()
    }
}
