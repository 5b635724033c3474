import Foundation
import IMAPCore
import Testing

@testable import MailStore

/// QRESYNC from a client's side: it leaves, others change the mailbox, it comes back with what
/// it knew and hears exactly what changed (RFC 7162 §3.2.5).
@Suite struct IMAPQResyncTests {
    /// The UIDs a `sequence-set` of numbers names (`1:3,7`).
    static func numbers(_ text: Substring) -> Set<UInt32> {
        var result = Set<UInt32>()
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: ":").compactMap { UInt32($0) }
            guard let low = bounds.min(), let high = bounds.max() else { continue }
            result.formUnion(low...high)
        }
        return result
    }

    static func value(_ code: String, in lines: [String]) -> UInt64? {
        for line in lines {
            guard let range = line.range(of: "[" + code + " ") else { continue }
            return UInt64(line[range.upperBound...].prefix { $0.isNumber })
        }
        return nil
    }

    @Test func aClientThatComesBackHearsExactlyWhatChanged() async throws {
        let owner = try await IMAPHarness()
        let account = try await owner.accounts.account(IMAPHarness.user)
        for number in 4...60 {
            _ = try account.append("INBOX", message: IMAPHarness.message(number % 9 + 1), flags: [], internalDate: nil)
        }
        // The client's first visit: it remembers UIDVALIDITY and HIGHESTMODSEQ, and leaves.
        let first = try await IMAPHarness(sharing: owner)
        try await first.login()
        #expect(try await first.command("a ENABLE QRESYNC").first == "* ENABLED QRESYNC")
        let selected = try await first.command("b SELECT INBOX")
        let validity = try #require(Self.value("UIDVALIDITY", in: selected))
        let modSeq = try #require(Self.value("HIGHESTMODSEQ", in: selected))
        #expect(try await first.command("c LOGOUT").last == "c OK LOGOUT done")
        await first.close()

        // Meanwhile: another session flags and expunges, another program removes a file and
        // renames another (a flag), and a message arrives.
        try await owner.login()
        _ = try await owner.command("d SELECT INBOX")
        var random = SystemRandomNumberGenerator()
        let uids = Array(UInt32(1)...60)
        let flagged = Set(uids.shuffled(using: &random).prefix(15))
        let expunged = Set(uids.shuffled(using: &random).prefix(10))
        for uid in flagged.sorted() {
            #expect(
                try await owner.command("e UID STORE \(uid) +FLAGS.SILENT (\\Flagged $Seen\(uid % 3))").last
                    == "e OK STORE done"
            )
        }
        for uid in expunged.sorted() {
            _ = try await owner.command("f UID STORE \(uid) +FLAGS.SILENT (\\Deleted)")
        }
        #expect(try await owner.command("g EXPUNGE").last?.hasPrefix("g OK") == true)
        let survivors = Set(uids).subtracting(expunged).sorted()
        #expect(try account.state(of: "INBOX").messages.count == survivors.count)
        // Another program (mutt, Dovecot) removes one file and flags another by its name.
        let removedByOther = survivors[3]
        let renamedByOther = survivors[4]
        let inbox = owner.directory + "/mail/" + IMAPHarness.user + "/"
        let rows = try #require(account.folders["INBOX"]).messages
        let removedFile = try #require(rows[removedByOther]).file
        let renamedFile = try #require(rows[renamedByOther]).file
        try FileManager.default.removeItem(atPath: inbox + removedFile)
        let renamed = "cur/" + MaildirFileName(String(renamedFile.dropFirst(4))).with(flags: ["\\Answered"]).name
        try FileManager.default.moveItem(atPath: inbox + renamedFile, toPath: inbox + renamed)
        try await owner.store.deliver(
            IMAPConcurrencyTests.Bytes(
                bytes: Array("Return-Path: <b@example.test>\r\nSubject: late\r\n\r\nhi\r\n".utf8)
            ),
            id: "Q9",
            to: [IMAPHarness.user]
        )

        // The client comes back with what it knew.
        let back = try await IMAPHarness(sharing: owner)
        try await back.login()
        _ = try await back.command("h ENABLE QRESYNC")
        let lines = try await back.command("i SELECT INBOX (QRESYNC (\(validity) \(modSeq)))")
        #expect(lines.last == "i OK [READ-WRITE] SELECT done", "\(lines)")
        let vanishedLines = lines.filter { $0.hasPrefix("* VANISHED (EARLIER) ") }
        #expect(vanishedLines.count == 1)
        let vanished = vanishedLines.first.map { Self.numbers($0.dropFirst("* VANISHED (EARLIER) ".count)) } ?? []
        #expect(vanished == expunged.union([removedByOther]), "exactly the messages gone, no more")
        var fetched: [UInt32: String] = [:]
        for line in lines where line.contains(" FETCH (UID ") {
            let uid = line.split(separator: " ")[4]
            fetched[UInt32(uid) ?? 0] = line
        }
        let now = try account.state(of: "INBOX")
        let expected = flagged.subtracting(expunged).subtracting([removedByOther])
            .union([renamedByOther, now.messages.last!.uid])
        #expect(Set(fetched.keys) == expected, "exactly the messages changed or new")
        #expect(fetched[renamedByOther]?.contains("\\Answered") == true)
        // (The other program's rename wrote the letters of \\Answered alone.)
        for (uid, line) in fetched where flagged.contains(uid) && uid != renamedByOther {
            #expect(
                line.contains("\\Flagged") && line.contains("$Seen\(uid % 3)") && line.contains("MODSEQ ("),
                "\(line)"
            )
        }
        await back.close()
        await owner.close()
    }
}
