import Foundation
import GRDB
import NIOPosix
import Testing

@testable import MailStore

/// The mailbox side of the store: UIDs, flags in file names, folders, and what happens when
/// another program (Dovecot, mutt, a delivery) changes the Maildir behind the index's back.
@Suite struct MailAccountTests {
    let directory: TemporaryDirectory
    let maildirs: MaildirStore
    let address = "alice@example.test"

    init() throws {
        self.directory = try TemporaryDirectory()
        self.maildirs = MaildirStore(mailRoot: self.directory.path, hostname: "mx.test")
    }

    func open() throws -> MailAccount {
        try MailAccount(
            address: self.address,
            maildirs: self.maildirs,
            specialUse: ["Sent": "\\Sent", "Junk": "\\Junk"]
        )
    }

    var root: String { self.directory.path + "/" + self.address }

    func message(_ subject: String) -> [UInt8] {
        Array("From: a@example.test\r\nSubject: \(subject)\r\n\r\nbody\r\n".utf8)
    }

    /// A file as another program drops it into `new/`.
    func deliverBehindTheIndex(_ name: String, folder: String = "", content: String = "Subject: x\n\nx\n") throws {
        let path = self.root + folder + "/new/" + name
        try content.write(toFile: path, atomically: false, encoding: .utf8)
    }

    func files(_ sub: String, folder: String = "") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: self.root + folder + "/" + sub)) ?? []).sorted()
    }

    @Test func specialUseFoldersExistFromTheFirstOpen() throws {
        let account = try self.open()
        let names = try account.list().map(\.name)
        #expect(names == ["INBOX", "Junk", "Sent"])
        #expect(try account.list().first { $0.name == "Sent" }?.specialUse == "\\Sent")
        #expect(FileManager.default.fileExists(atPath: self.root + "/.Sent/maildirfolder"))
    }

    @Test func appendGivesAscendingUIDsAndKeepsTheOctets() throws {
        let account = try self.open()
        let first = try account.append(
            "INBOX",
            message: self.message("one"),
            flags: ["\\Seen"],
            internalDate: 1_000_000
        )
        let second = try account.append("INBOX", message: self.message("two"), flags: [], internalDate: nil)
        #expect(first.uid == 1 && second.uid == 2 && first.uidValidity == second.uidValidity)
        let state = try account.state(of: "INBOX")
        #expect(state.messages.map(\.uid) == [1, 2])
        #expect(state.uidNext == 3)
        #expect(state.messages[0].flags.system == .seen)
        #expect(state.messages[0].internalDate == 1_000_000)
        #expect(state.messages[0].size == self.message("one").count)
        #expect(try account.read("INBOX", uid: 1) == self.message("one"))
        // On disk: LF line ends (as mutt and Dovecot expect), the flag in the name.
        let stored = try #require(self.files("cur").first { $0.hasSuffix(":2,S") })
        #expect(try String(contentsOfFile: self.root + "/cur/" + stored, encoding: .utf8).contains("\r") == false)
    }

    @Test func filesOtherProgramsAddGetNewUIDsOnce() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("ours"), flags: [], internalDate: nil)
        try self.deliverBehindTheIndex("1700000000.M1P1.other,S=15")
        let state = try account.state(of: "INBOX")
        #expect(state.messages.map(\.uid) == [1, 2])
        // Moved from new/ to cur/ by another program: the same message, the same UID.
        try FileManager.default.moveItem(
            atPath: self.root + "/new/1700000000.M1P1.other,S=15",
            toPath: self.root + "/cur/1700000000.M1P1.other,S=15:2,S"
        )
        let again = try account.state(of: "INBOX")
        #expect(again.messages.map(\.uid) == [1, 2])
        #expect(again.messages[1].flags.system == .seen)
        #expect(again.highestModSeq > state.highestModSeq)
        #expect(again.messages[1].modSeq == again.highestModSeq)
    }

    @Test func filesOtherProgramsRemoveAreExpunged() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("one"), flags: [], internalDate: nil)
        _ = try account.append("INBOX", message: self.message("two"), flags: [], internalDate: nil)
        let doomed = try #require(self.files("cur").first)
        try FileManager.default.removeItem(atPath: self.root + "/cur/" + doomed)
        let state = try account.state(of: "INBOX")
        #expect(state.messages.count == 1)
        // UIDs are never given again.
        _ = try account.append("INBOX", message: self.message("three"), flags: [], internalDate: nil)
        #expect(try account.state(of: "INBOX").messages.map(\.uid).last == 3)
    }

    @Test func flagsGoIntoFileNamesAndOtherLettersSurvive() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("one"), flags: [], internalDate: nil)
        // Dovecot's keyword letter `a` and maildir's `P` (passed), set by other programs.
        let name = try #require(self.files("cur").first)
        let base = String(name.prefix { $0 != ":" })
        try FileManager.default.moveItem(
            atPath: self.root + "/cur/" + name,
            toPath: self.root + "/cur/" + base + ":2,Pa"
        )
        let changed = try account.setFlags("INBOX", uids: [1], .add, ["\\Flagged", "\\Seen", "$Work"])
        #expect(changed.count == 1)
        #expect(self.files("cur") == [base + ":2,FPSa"])
        #expect(changed[0].flags.keywords == ["$Work"])
        _ = try account.setFlags("INBOX", uids: [1], .remove, ["\\seen"])
        #expect(self.files("cur") == [base + ":2,FPa"])
        _ = try account.setFlags("INBOX", uids: [1], .replace, ["\\Deleted"])
        #expect(self.files("cur") == [base + ":2,PTa"])
        let state = try account.state(of: "INBOX")
        #expect(state.messages[0].flags == MessageFlags(system: .deleted, keywords: []))
        // Setting what is already set changes nothing, MODSEQ included.
        #expect(try account.setFlags("INBOX", uids: [1], .add, ["\\Deleted"]).isEmpty)
    }

    @Test func aFlagChangeFindsAFileAnotherProgramRenamed() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("one"), flags: [], internalDate: nil)
        let name = try #require(self.files("cur").first)
        let base = String(name.prefix { $0 != ":" })
        try FileManager.default.moveItem(
            atPath: self.root + "/cur/" + name,
            toPath: self.root + "/cur/" + base + ":2,R"
        )
        // The index still knows the old name; the rename must rescan rather than fail.
        let changed = try account.setFlags("INBOX", uids: [1], .add, ["\\Seen"])
        #expect(changed.first?.flags.system == [.seen, .answered])
        #expect(self.files("cur") == [base + ":2,RS"])
    }

    @Test func expungeRemovesOnlyDeletedMessages() throws {
        let account = try self.open()
        for subject in ["a", "b", "c"] {
            _ = try account.append("INBOX", message: self.message(subject), flags: [], internalDate: nil)
        }
        _ = try account.setFlags("INBOX", uids: [1, 3], .add, ["\\Deleted"])
        #expect(try account.expunge("INBOX", uids: [2, 3]) == [3])
        #expect(try account.expunge("INBOX", uids: nil) == [1])
        #expect(try account.state(of: "INBOX").messages.map(\.uid) == [2])
        #expect(self.files("cur").count == 1)
    }

    @Test func copyLinksAndKeepsFlagsAndKeywords() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("a"), flags: ["\\Flagged", "work"], internalDate: 5)
        let copied = try account.copy(uids: [1], from: "INBOX", to: "Sent")
        #expect(copied.uids.map(\.1) == [1])
        let state = try account.state(of: "Sent")
        #expect(state.messages[0].flags == MessageFlags(system: .flagged, keywords: ["work"]))
        #expect(state.messages[0].internalDate == 5)
        #expect(try account.read("Sent", uid: 1) == self.message("a"))
        #expect(throws: MailboxError.nonexistent("Nowhere")) {
            try account.copy(uids: [1], from: "INBOX", to: "Nowhere")
        }
    }

    @Test func foldersAreMadeRenamedAndDeleted() throws {
        let account = try self.open()
        try account.create("Work")
        try account.create("Work.2026")
        #expect(throws: MailboxError.alreadyExists("Work")) { try account.create("Work") }
        _ = try account.append("Work.2026", message: self.message("a"), flags: [], internalDate: nil)
        let validity = try account.state(of: "Work.2026").uidValidity
        try account.rename("Work", to: "Jobs")
        #expect(try account.list().map(\.name) == ["INBOX", "Jobs", "Jobs.2026", "Junk", "Sent"])
        // A renamed folder keeps its UIDs and UIDVALIDITY.
        #expect(try account.state(of: "Jobs.2026").uidValidity == validity)
        #expect(try account.state(of: "Jobs.2026").messages.count == 1)
        try account.delete("Jobs")
        let after = try account.list()
        #expect(after.map(\.name) == ["INBOX", "Jobs", "Jobs.2026", "Junk", "Sent"])
        #expect(after.first { $0.name == "Jobs" }?.exists == false, "a level only, for its child")
        #expect(throws: MailboxError.cannot("INBOX cannot be deleted")) { try account.delete("inbox") }
        // Made again, a folder never reuses a UIDVALIDITY.
        try account.create("Jobs")
        #expect(try account.state(of: "Jobs").uidValidity > validity)
    }

    @Test func renamingInboxMovesItsMessages() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("a"), flags: [], internalDate: nil)
        try account.rename("INBOX", to: "Old")
        #expect(try account.state(of: "INBOX").messages.isEmpty)
        #expect(try account.state(of: "Old").messages.count == 1)
    }

    @Test(arguments: [
        ("", "empty"), ("a..b", "empty level"), (".a", "leading dot"), ("a.", "trailing dot"), ("a/b", "slash"),
        ("../x", "escape"), ("a\u{1}b", "control"), ("INBOX.x", "under INBOX"), ("petrel-deleted-2", "the server's"),
        (String(repeating: "x", count: 201), "long"),
    ])
    func namesThatCannotBeFolders(name: String, why: String) {
        #expect(throws: MailboxError.self, "\(why)") { try MailAccount.canonicalName(name) }
    }

    @Test func theIndexIsRebuiltWhenLostOrDamaged() throws {
        var account: MailAccount? = try self.open()
        _ = try account!.append("INBOX", message: self.message("a"), flags: ["\\Seen"], internalDate: nil)
        let validity = try account!.state(of: "INBOX").uidValidity
        account = nil
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: self.root + "/petrel-index.sqlite" + suffix)
        }
        try "not a database, not at all, nothing like one".write(
            toFile: self.root + "/petrel-index.sqlite",
            atomically: false,
            encoding: .utf8
        )
        sleep(1)  // UIDVALIDITY is a time in seconds
        let rebuilt = try self.open()
        let state = try rebuilt.state(of: "INBOX")
        #expect(state.messages.count == 1)
        #expect(state.messages[0].flags.system == .seen, "flags come back from the file name")
        #expect(state.uidValidity > validity, "new UIDs, so a new UIDVALIDITY")
        #expect(try FileManager.default.contentsOfDirectory(atPath: self.root).contains { $0.contains(".damaged-") })
    }

    @Test func concurrentAppendsGetDistinctAscendingUIDs() async throws {
        let account = try self.open()
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        let accounts = MailAccounts(maildirs: self.maildirs, threadPool: pool, uploads: self.directory.path)
        let message = self.message("x")
        let uids = try await withThrowingTaskGroup(of: UInt32.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await accounts.run(account) { () throws(MailboxError) in
                        try account.append("INBOX", message: message, flags: [], internalDate: nil).uid
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await pool.shutdownGracefully()
        #expect(Set(uids).count == 40)
        #expect(try account.state(of: "INBOX").messages.map(\.uid) == Array(1...40))
    }
}

extension MailAccountTests {
    @Test func aFolderMadeAgainAfterARenameIsMade() throws {
        let account = try self.open()
        try account.create("Projects")
        try account.rename("Projects", to: "Old")
        try account.create("Projects")
        #expect(FileManager.default.fileExists(atPath: self.root + "/.Projects/cur"))
        try account.delete("Projects")
        try account.create("Projects")
        #expect(FileManager.default.fileExists(atPath: self.root + "/.Projects/cur"))
    }
}

extension MailAccountTests {
    @Test func theStructureIsComputedWhenAMessageIsFirstSeenAndKept() throws {
        let account = try self.open()
        try self.deliverBehindTheIndex(
            "1700000001.M1P1.other",
            content: "Subject: first\nContent-Type: text/html\n\n<p>\n"
        )
        _ = try account.state(of: "INBOX")
        // Changed behind the index's back: what is served of the structure is what was indexed.
        try "Subject: changed\n\nplain\n".write(
            toFile: self.root + "/new/1700000001.M1P1.other",
            atomically: false,
            encoding: .utf8
        )
        let structure = try #require(try account.structure("INBOX", uid: 1))
        #expect(structure.contentType.subtype == "html")
        _ = try account.append("INBOX", message: self.message("appended"), flags: [], internalDate: nil)
        #expect(try account.structure("INBOX", uid: 2)?.header.fields.first?.name == "From")
    }
}

extension MailAccountTests {
    @Test func moveRenamesEachFileIntoTheOtherFolder() throws {
        let account = try self.open()
        for subject in ["a", "b"] {
            _ = try account.append("INBOX", message: self.message(subject), flags: ["\\Flagged"], internalDate: 7)
        }
        let moved = try account.move(uids: [1, 2], from: "INBOX", to: "Sent")
        #expect(moved.uids.map(\.1) == [1, 2])
        #expect(self.files("cur").isEmpty, "gone from INBOX in the same step")
        #expect(self.files("cur", folder: "/.Sent").count == 2)
        let state = try account.state(of: "Sent")
        #expect(state.messages.map(\.flags.system) == [.flagged, .flagged])
        #expect(try account.state(of: "INBOX").messages.isEmpty)
        #expect(try account.structure("Sent", uid: 1)?.header.fields.isEmpty == false)
    }

    @Test func expungeFindsAFileAnotherProgramRenamed() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("a"), flags: ["\\Deleted"], internalDate: nil)
        let name = try #require(self.files("cur").first)
        try FileManager.default.moveItem(atPath: self.root + "/cur/" + name, toPath: self.root + "/cur/" + name + "S")
        // The index still has the old name: the message must go, not come back under a new UID.
        #expect(try account.expunge("INBOX", uids: nil) == [1])
        #expect(self.files("cur").isEmpty)
        #expect(try account.state(of: "INBOX").messages.isEmpty)
    }
}

extension MailAccountTests {
    @Test func moveIntoTheSameFolderGivesNewUIDsAndKeepsUIDNEXT() throws {
        let account = try self.open()
        for subject in ["a", "b"] {
            _ = try account.append("INBOX", message: self.message(subject), flags: [], internalDate: nil)
        }
        #expect(try account.move(uids: [1], from: "INBOX", to: "inbox").uids.map(\.1) == [3])
        #expect(try account.append("INBOX", message: self.message("c"), flags: [], internalDate: nil).uid == 4)
        let state = try account.state(of: "INBOX")
        #expect(state.messages.map(\.uid) == [2, 3, 4])
        #expect(state.uidNext == 5)
    }

    @Test func aFolderWhoseCurIsALinkIsNotUsed() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("secret"), flags: [], internalDate: nil)
        try account.create("Spy")
        try FileManager.default.removeItem(atPath: self.root + "/.Spy/cur")
        try FileManager.default.createSymbolicLink(
            atPath: self.root + "/.Spy/cur",
            withDestinationPath: self.root + "/cur"
        )
        #expect(throws: MailboxError.self) { try account.state(of: "Spy") }
        // A folder that is a link is no folder.
        try FileManager.default.createSymbolicLink(
            atPath: self.root + "/.Elsewhere",
            withDestinationPath: self.root + "/.Spy"
        )
        #expect(!(try account.list().map(\.name).contains("Elsewhere")))
    }
}

extension MailAccountTests {
    @Test func aDeleteACrashInterruptedIsFinishedAndItsNameIsNoFolder() throws {
        let account = try self.open()
        try FileManager.default.createDirectory(
            atPath: self.root + "/.petrel-deleted-7-1700000000/cur",
            withIntermediateDirectories: true
        )
        #expect(!(try account.list().map(\.name).contains { $0.hasPrefix("petrel-deleted") }))
        #expect(!FileManager.default.fileExists(atPath: self.root + "/.petrel-deleted-7-1700000000"))
        #expect(throws: MailboxError.self) { try account.create("petrel-deleted-1") }
    }

    /// QRESYNC's tombstones: every way a message leaves a folder (EXPUNGE, MOVE, another
    /// program's unlink) is remembered with its MODSEQ; pruned ones raise the floor, which
    /// outlives the process.
    @Test func whatLeftAFolderIsRememberedWithItsModSeq() throws {
        let account = try self.open()
        for number in 1...5 {
            _ = try account.append("INBOX", message: self.message("m\(number)"), flags: [], internalDate: nil)
        }
        let start = try account.state(of: "INBOX").highestModSeq
        _ = try account.setFlags("INBOX", uids: [1], .add, ["\\Deleted"])
        #expect(try account.expunge("INBOX", uids: nil) == [1])
        let afterExpunge = try account.state(of: "INBOX").highestModSeq
        _ = try account.move(uids: [3], from: "INBOX", to: "Junk")
        let five = try #require(
            self.files("cur").first { name in
                (try? String(contentsOfFile: self.root + "/cur/" + name, encoding: .utf8))?.contains("m5") == true
            }
        )
        try FileManager.default.removeItem(atPath: self.root + "/cur/" + five)
        let state = try account.state(of: "INBOX")
        #expect(state.messages.map(\.uid) == [2, 4])
        #expect(try account.vanished("INBOX", since: start) == ([1, 3, 5], true))
        #expect(try account.vanished("INBOX", since: afterExpunge).uids == [3, 5])
        #expect(try account.vanished("INBOX", since: state.highestModSeq) == ([], true))
        #expect(try account.vanished("Junk", since: 0) == ([], true))
        // Pruned: what is older than the cut is no longer known one by one.
        let folder = try #require(account.folders["INBOX"])
        let floor = try account.index.pruneVanished(folder: folder.row.id, before: Int64(time(nil)) + 10)
        #expect(floor == state.highestModSeq)
        let reopened = try self.open()
        #expect(try reopened.vanished("INBOX", since: start) == ([], false))
        #expect(try reopened.vanished("INBOX", since: state.highestModSeq) == ([], true))
    }

    /// CONDSTORE's conditional STORE: a message changed after UNCHANGEDSINCE is left alone and
    /// named; the others change, each with a MODSEQ of its own above the last.
    @Test func aConditionalFlagChangeLeavesNewerMessagesAlone() throws {
        let account = try self.open()
        for number in 1...3 {
            _ = try account.append("INBOX", message: self.message("m\(number)"), flags: [], internalDate: nil)
        }
        let before = try account.state(of: "INBOX")
        _ = try account.setFlags("INBOX", uids: [2], .add, ["$Seen2"])
        let result = try account.setFlags(
            "INBOX",
            uids: [1, 2, 3],
            .add,
            ["\\Flagged"],
            unchangedSince: before.highestModSeq
        )
        #expect(result.modified == [2])
        #expect(result.changed.map(\.uid) == [1, 3])
        #expect(result.changed.allSatisfy { $0.modSeq > before.highestModSeq + 1 })
        #expect(Set(result.changed.map(\.modSeq)).count == 2)
        let after = try account.state(of: "INBOX")
        #expect(!after.messages[1].flags.system.contains(.flagged))
        #expect(try account.setFlags("INBOX", uids: [1, 2, 3], .add, ["x"], unchangedSince: 0).modified == [1, 2, 3])
    }

    /// A mailbox's usage: every folder's files, sizes from `,S=` or stat, a folder being
    /// deleted not counted; kept up to date by APPEND, forgotten by EXPUNGE.
    @Test func usageCountsEveryFolderAndFollowsChanges() throws {
        let account = try self.open()
        try self.deliverBehindTheIndex("1.M1P1Q1.host,S=1000", content: "x")  // its name says 1000
        try self.deliverBehindTheIndex("2.M2P2Q2.host", folder: "/.Junk", content: "12345")  // stat: 5
        try FileManager.default.createDirectory(
            atPath: self.root + "/" + MailAccount.deletedPrefix + "9/cur",
            withIntermediateDirectories: true
        )
        try "zzz".write(
            toFile: self.root + "/" + MailAccount.deletedPrefix + "9/cur/3.M3.host",
            atomically: false,
            encoding: .utf8
        )
        #expect(try MailboxUsage.count(self.root) == StorageUsage(bytes: 1005, messages: 2))
        #expect(MailboxUsage.sizeInName("1.M1P1Q1.host,S=1000:2,S") == 1000)
        #expect(MailboxUsage.sizeInName("1.M1P1Q1.host,W=9:2,S=7") == nil, "S= after :2, is a flag, not a size")
        #expect(try self.maildirs.usage(of: self.address).bytes == 1005)
        _ = try account.append("INBOX", message: self.message("more"), flags: ["\\Deleted"], internalDate: nil)
        let afterAppend = try self.maildirs.usage(of: self.address)
        #expect(afterAppend.messages == 3 && afterAppend.bytes > 1005)
        #expect(try MailboxUsage.count(self.root) == afterAppend, "kept as a recount finds it")
        _ = try account.expunge("INBOX", uids: nil)
        #expect(try self.maildirs.usage(of: self.address) == StorageUsage(bytes: 1005, messages: 2), "counted again")
        _ = try account.copy(uids: [1], from: "INBOX", to: "Sent")
        #expect(try MailboxUsage.count(self.root) == self.maildirs.usage(of: self.address), "a COPY as a recount")
    }

    /// OBJECTID: a message keeps its EMAILID through COPY and MOVE and a reopening; messages
    /// differ; a folder's MAILBOXID follows a RENAME, and one made again gets another. PREVIEW
    /// is kept from the first sight of a message and goes with it.
    @Test func objectIDsAndPreviewsStayWithTheirObjects() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("one"), flags: [], internalDate: nil)
        _ = try account.append("INBOX", message: self.message("two"), flags: [], internalDate: nil)
        try account.create("Work")
        let inbox = try account.state(of: "INBOX")
        let ids = inbox.messages.map(\.emailID)
        #expect(Set(ids).count == 2 && ids.allSatisfy { $0.hasPrefix("M") && $0.count == 17 })
        _ = try account.copy(uids: [1], from: "INBOX", to: "Work")
        _ = try account.move(uids: [2], from: "INBOX", to: "Work")
        let work = try account.state(of: "Work")
        #expect(work.messages.map(\.emailID) == ids)
        #expect(try self.open().state(of: "Work").messages.map(\.emailID) == ids, "the same after a reopening")
        #expect(try account.preview("Work", uid: 2) == "body")
        let workID = work.mailboxID
        try account.rename("Work", to: "Projects")
        #expect(try account.state(of: "Projects").mailboxID == workID)
        try account.delete("Projects")
        try account.create("Projects")
        #expect(try account.state(of: "Projects").mailboxID != workID)
        #expect(try account.state(of: "INBOX").mailboxID == inbox.mailboxID)
    }

    /// This process's own changes do not make the next command scan the folder; what another
    /// program did in the same clock tick (its directory time unchanged) is seen once the
    /// times are a tick old.
    @Test func anotherProgramsChangeInTheSameTickIsSeenAfterIt() throws {
        let account = try self.open()
        _ = try account.append("INBOX", message: self.message("ours"), flags: [], internalDate: nil)
        let folder = try #require(account.folders["INBOX"])
        let adopted = try #require(folder.stamps[1])
        #expect(folder.verifyAfter != nil)
        // Another program's file in cur/, the directory's time put back: the same tick.
        try "Subject: theirs\n\nx\n".write(
            toFile: self.root + "/cur/1.M1P1Q1.host:2,",
            atomically: false,
            encoding: .utf8
        )
        var times = [
            timespec(tv_sec: Int(adopted / 1_000_000_000), tv_nsec: Int(adopted % 1_000_000_000)),
            timespec(tv_sec: Int(adopted / 1_000_000_000), tv_nsec: Int(adopted % 1_000_000_000)),
        ]
        _ = utimensat(AT_FDCWD, self.root + "/cur", &times, 0)
        usleep(60_000)
        #expect(try account.state(of: "INBOX").messages.count == 2, "seen once the tick passed")
        #expect(folder.verifyAfter == nil)
    }

    /// A delivery during a long change of our own (a big STORE) is not taken as seen: the
    /// times are adopted only when the change took less than a tick.
    @Test func aDeliveryDuringALongChangeOfOurOwnIsNotHidden() throws {
        let account = try self.open()
        _ = try account.state(of: "INBOX")
        let folder = try #require(account.folders["INBOX"])
        let own = account.beginOwnChange(folder)
        try self.deliverBehindTheIndex("2.M2P2Q2.host", content: "Subject: during\n\nx\n")
        usleep(60_000)
        account.adoptOwnChange(folder, since: own)
        #expect(try account.state(of: "INBOX").messages.count == 1, "seen at once")
    }

    /// Tombstones beyond the most a folder keeps go, oldest first, and the floor rises with them.
    @Test func tombstonesBeyondTheMostKeptGoOldestFirst() throws {
        let account = try self.open()
        for number in 1...5 {
            _ = try account.append(
                "INBOX",
                message: self.message("m\(number)"),
                flags: ["\\Deleted"],
                internalDate: nil
            )
        }
        let start = try account.state(of: "INBOX").highestModSeq
        for uid in UInt32(1)...5 { _ = try account.expunge("INBOX", uids: [uid]) }
        let folder = try #require(account.folders["INBOX"])
        let floor = try #require(try account.index.pruneVanished(folder: folder.row.id, before: 0, keep: 2))
        #expect(try account.index.vanished(folder: folder.row.id, since: 0) == [4, 5])
        let highest = try account.state(of: "INBOX").highestModSeq
        #expect(floor > start && floor < highest)
        #expect(try self.open().vanished("INBOX", since: start) == ([4, 5], false), "no longer all of them")
    }
}

/// What sessions in IDLE read when woken: the state the account published, without a trip.
extension MailAccountTests {
    @Test func thePublishedStateIsTheLastChangeAndAgesOut() throws {
        let account = try self.open()
        #expect(account.publishedState(of: "INBOX", checkedWithin: .max) == nil, "no one asked yet")
        _ = try account.append("INBOX", message: self.message("one"), flags: [], internalDate: nil)
        let first = try account.state(of: "INBOX")
        #expect(account.publishedState(of: "INBOX", checkedWithin: .max) == first)
        _ = try account.append("INBOX", message: self.message("two"), flags: [], internalDate: nil)
        let published = try #require(account.publishedState(of: "INBOX", checkedWithin: .max))
        #expect(published.uids == [1, 2], "a commit publishes again")
        #expect(published.highestModSeq > first.highestModSeq)
        #expect(
            account.publishedState(of: "INBOX", checkedWithin: 0) == nil,
            "the directories were looked at before now"
        )
        #expect(account.publishedState(of: "Sent", checkedWithin: .max) == nil)
        _ = try account.state(of: "Sent")
        try account.rename("Sent", to: "Outbox")
        #expect(account.publishedState(of: "Sent", checkedWithin: .max) == nil, "gone with the name")
    }

    @Test(.timeLimit(.minutes(1))) func aDeliveryToAWatchedAccountIsTakenInAndWakesItsSessions() async throws {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let accounts = MailAccounts(maildirs: self.maildirs, threadPool: pool, uploads: self.directory.path)
        let account = try await accounts.account(self.address)
        _ = try await accounts.run(account) { () throws(MailboxError) in try account.state(of: "INBOX", watching: true)
        }
        let (changes, cancel) = self.maildirs.changes.listen(self.address)
        let source = self.directory.path + "/incoming-1"
        try "Subject: delivered\r\n\r\nhi\r\n".write(toFile: source, atomically: false, encoding: .utf8)
        _ = try self.maildirs.deliver(source, id: "Q1", size: 24, to: [self.address])
        // The take-in's commit is the wake-up, and what it published has the message.
        var woken = changes.makeAsyncIterator()
        #expect(await woken.next() != nil)
        #expect(account.publishedState(of: "INBOX", checkedWithin: .max)?.messages.count == 1)
        cancel()
        try await pool.shutdownGracefully()
    }

    /// Only folders a session in IDLE watches are looked at for deliveries: a STATUS of a
    /// thousand folders does not make every delivery scan them.
    @Test func onlyWatchedFoldersAreTakenIn() throws {
        let account = try self.open()
        _ = try account.state(of: "Sent")
        _ = try account.state(of: "INBOX", watching: true)
        usleep(60_000)  // past the clock tick of the directories' creation
        try self.deliverBehindTheIndex("1700000001.M1P1.other", folder: "/.Sent")
        try self.deliverBehindTheIndex("1700000002.M2P1.other")
        _ = account.takeIn()
        #expect(account.published.withLockedValue { Array($0.keys) } == ["INBOX"], "Sent was not watched")
        #expect(account.publishedState(of: "INBOX", checkedWithin: .max)?.messages.count == 1)
    }

    /// A directory time far in the future (`touch -d 2300-01-01 cur`, a restored backup) is
    /// read without overflow, and the folder still takes in what arrives.
    @Test func aDirectoryTimeCenturiesAheadIsNoCrash() throws {
        let account = try self.open()
        _ = try account.state(of: "INBOX", watching: true)
        let far = Date(timeIntervalSince1970: 10_500_000_000)  // the year 2302
        try FileManager.default.setAttributes([.modificationDate: far], ofItemAtPath: self.root + "/cur")
        try self.deliverBehindTheIndex("1700000003.M3P1.other")
        #expect(try account.state(of: "INBOX").messages.count == 1)
        // A look again within a tick of the delivery's time at most, never at the time ahead.
        #expect((account.takeIn() ?? 0) <= MailAccount.now() + 1_000_000_000)
    }

    @Test(
        arguments: [
            (Int64.min, Int64(0), Int64(0)), (-9_000_000_000, 5, 5), (0, 0, 0),
            (1_700_000_000, 123, 1_700_000_000_000_000_123),
            (10_500_000_000, 999_999_999, 9_000_000_000_999_999_999), (Int64.max, Int64.max, 9_000_000_000_999_999_999),
        ] as [(Int64, Int64, Int64)]
    )
    func fileTimesAreClampedIntoRange(seconds: Int64, nanoseconds: Int64, expected: Int64) {
        #expect(MaildirFiles.nanoseconds(seconds: seconds, nanoseconds) == expected)
        // Whatever the time, when to look again is computed without overflow.
        let now = MailAccount.now()
        _ = MailAccount.verification(of: [expected, nil], now: now, pending: nil)
    }

    @Test func aTimeWithinATickIsLookedAtAgainAndOneAheadIsNot() {
        let now: Int64 = 1_800_000_000_000_000_000
        #expect(MailAccount.verification(of: [now - 10_000_000], now: now, pending: nil) == now + 40_000_000)
        #expect(MailAccount.verification(of: [now - 60_000_000], now: now, pending: nil) == nil)
        #expect(MailAccount.verification(of: [now + 86_400_000_000_000], now: now, pending: nil) == nil)
    }

    /// A directory, a FIFO or a file Petrel may not read, among the messages: left out,
    /// without waiting on it, and not looked for again until the directories change.
    @Test(.timeLimit(.minutes(1))) func entriesThatAreNoMessagesAreLeftOut() throws {
        let account = try self.open()
        try self.deliverBehindTheIndex("1700000004.M4P1.other")
        try FileManager.default.createDirectory(
            atPath: self.root + "/cur/1700000005.M5P1.other:2,",
            withIntermediateDirectories: false
        )
        #expect(mkfifo(self.root + "/cur/1700000006.M6P1.other:2,S", 0o600) == 0)
        let state = try account.state(of: "INBOX")
        #expect(state.messages.count == 1)
        let folder = try #require(account.folders["INBOX"])
        #expect(folder.unreadable == ["cur/1700000005.M5P1.other:2,", "cur/1700000006.M6P1.other:2,S"])
        #expect(try account.state(of: "INBOX").messages.count == 1)
    }
}

/// The header fields SEARCH reads without the message file: kept with each message in a table of
/// their own, gone with it, and moved there from an index of the version before.
extension MailAccountTests {
    @Test func keptHeaderFieldsComeAndGoWithTheirMessage() throws {
        let account = try self.open()
        try self.deliverBehindTheIndex("1700000007.M7P1.other", content: "From: a@example.test\nSubject: s\n\nbody\n")
        let uid = try #require(try account.state(of: "INBOX").messages.first?.uid)
        let kept = try account.keptHeaders("INBOX", uids: [uid, uid + 1])
        #expect(kept.keys.sorted() == [uid])
        #expect(String(decoding: kept[uid] ?? [], as: UTF8.self).contains("From: a@example.test"))
        try FileManager.default.removeItem(atPath: self.root + "/new/1700000007.M7P1.other")
        usleep(60_000)
        #expect(try account.state(of: "INBOX").messages.isEmpty)
        #expect(try account.keptHeaders("INBOX", uids: [uid]).isEmpty, "removed with the message")
    }

    @Test func anIndexOfVersionFiveKeepsItsHeaderFields() throws {
        let path = self.directory.path + "/v5.sqlite"
        do {
            let queue = try DatabaseQueue(path: path)
            try MailboxIndex.migrator.migrate(queue, upTo: "v5-kept-header")
            try queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO folders (name, uid_validity, uid_next, highest_modseq, subscribed)
                            VALUES ('INBOX', 7, 3, 1, 1);
                        INSERT INTO messages (folder, uid, base, file, keywords, modseq, size, internal_date, kept_header)
                            VALUES (1, 1, 'a', 'cur/a:2,', '', 1, 9, 0, X'46726F6D3A20780D0A'),
                                   (1, 2, 'b', 'cur/b:2,', '', 1, 9, 0, NULL);
                        """
                )
            }
        }
        let index = try MailboxIndex(path: path)
        #expect(try index.keptHeaders(folder: 1, uids: [1, 2]) == [1: Array("From: x\r\n".utf8)])
        try index.removeFolder(1)
        #expect(try index.keptHeaders(folder: 1, uids: [1]).isEmpty)
    }
}
