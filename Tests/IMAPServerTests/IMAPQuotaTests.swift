import Foundation
import IMAPCore
import Testing

@testable import IMAPServer

/// QUOTA (RFC 9208) against the account's limit, capability switches, and the client's ID in
/// the session's log line.
@Suite struct IMAPQuotaTests {
    static func append(_ tag: String, size: Int) -> String {
        "\(tag) APPEND INBOX {\(size)+}\r\nSubject: x\r\n\r\n" + String(repeating: "y", count: size - 16) + "\r\n"
    }

    @Test func appendAndCopyOverTheQuotaAreRefusedAndMoveIsNot() async throws {
        let harness = try await IMAPHarness()
        try await harness.login()
        // No limit: no quota root.
        #expect(
            try await harness.command("a GETQUOTAROOT INBOX") == ["* QUOTAROOT \"INBOX\"", "a OK GETQUOTAROOT done"]
        )
        #expect(try await harness.command("b GETQUOTA \"\"").last?.hasPrefix("b NO [NONEXISTENT]") == true)
        let used = try await harness.accounts.usage(of: IMAPHarness.user).bytes
        harness.logins.userSettings.withLockedValue { $0.storageLimit = used + 2_048 }
        let root = try await harness.command("c GETQUOTAROOT INBOX")
        #expect(
            root == [
                "* QUOTAROOT \"INBOX\" \"\"", "* QUOTA \"\" (STORAGE \((used + 1023) / 1024) \((used + 2048) / 1024))",
                "c OK GETQUOTAROOT done",
            ]
        )
        #expect(
            try await harness.command("d SETQUOTA \"\" (STORAGE 10)") == [
                "d NO [NOPERM] quotas are set by the server's operator"
            ]
        )
        // 1 KiB fits; 3 KiB would not.
        try await harness.send(Self.append("e", size: 1_024))
        #expect(await harness.response("e").last?.hasPrefix("e OK [APPENDUID ") == true)
        try await harness.send(Self.append("f", size: 3_072))
        #expect(await harness.response("f").last?.hasPrefix("f NO [OVERQUOTA] over quota: ") == true)
        _ = try await harness.command("g SELECT INBOX")
        #expect(try await harness.command("h COPY 1:4 Archive").last?.hasPrefix("h NO [OVERQUOTA]") == true)
        // Moving costs nothing: it is how room is made.
        #expect(try await harness.command("i MOVE 1:4 Trash").last == "i OK MOVE done")
        #expect(
            try await harness.command("j STATUS Trash (DELETED-STORAGE DELETED)").first
                == "* STATUS \"Trash\" (DELETED-STORAGE 0 DELETED 0)"
        )
        _ = try await harness.command("k SELECT Trash")
        _ = try await harness.command("l STORE 1:* +FLAGS.SILENT (\\Deleted)")
        let storage = try await harness.command("m STATUS Trash (DELETED-STORAGE)").first ?? ""
        #expect(storage.hasPrefix("* STATUS \"Trash\" (DELETED-STORAGE ") && !storage.hasSuffix(" 0)"), "\(storage)")
        #expect(try await harness.command("n EXPUNGE").last?.hasPrefix("n OK") == true)
        // Everything expunged: 2 KiB fits now.
        try await harness.send(Self.append("o", size: 2_040))
        #expect(await harness.response("o").last?.hasPrefix("o OK [APPENDUID ") == true, "room was made")
        await harness.close()
    }

    @Test func aCapabilitySwitchedOffIsNeitherAnnouncedNorEnabled() async throws {
        let harness = try await IMAPHarness()
        harness.logins.userSettings.withLockedValue { $0.disabledCapabilities = ["QRESYNC", "IDLE"] }
        _ = await harness.line()
        let login = try await harness.command("a LOGIN \(IMAPHarness.user) secret")
        let capabilities = login.last ?? ""
        #expect(
            capabilities.contains(" CONDSTORE ") && !capabilities.contains("QRESYNC")
                && !capabilities.contains(" IDLE ")
        )
        #expect(try await harness.command("b ENABLE QRESYNC CONDSTORE").first == "* ENABLED CONDSTORE")
        // CONDSTORE off takes QRESYNC with it, is not turned on by use, and SELECT does not
        // say HIGHESTMODSEQ; its commands still answer a client that sends them anyway.
        let other = try await IMAPHarness(sharing: harness)
        harness.logins.userSettings.withLockedValue { $0.disabledCapabilities = ["CONDSTORE"] }
        _ = await other.line()
        let otherLogin = try await other.command("c LOGIN \(IMAPHarness.user) secret").last ?? ""
        #expect(!otherLogin.contains("CONDSTORE") && !otherLogin.contains("QRESYNC"))
        #expect(try await other.command("d ENABLE QRESYNC").first == "* ENABLED")
        #expect(!(try await other.command("e SELECT INBOX")).contains { $0.contains("HIGHESTMODSEQ") })
        #expect(try await other.command("f FETCH 1 (MODSEQ)") == ["* 1 FETCH (MODSEQ (2))", "f OK FETCH done"])
        await other.close()
        await harness.close()
        #expect(IMAPSession.switchable.contains("QRESYNC") && !IMAPSession.switchable.contains("IMAP4rev1"))
    }

    /// ENVELOPE and BODYSTRUCTURE made once and kept: the second FETCH, from what was kept, is
    /// the first one octet for octet; a message whose header is not ASCII is made each time.
    @Test func keptRenderingsAnswerAsTheMadeOnesDid() async throws {
        let harness = try await IMAPHarness()
        try await harness.login()
        let message = Array("Subject: Gr\u{FC}\u{DF}e\r\nFrom: J\u{F6}rg <j@example.test>\r\n\r\nhi\r\n".utf8)
        try await harness.send(Array("a APPEND INBOX {\(message.count)+}\r\n".utf8) + message + [13, 10])
        _ = await harness.response("a")
        _ = try await harness.command("b SELECT INBOX")
        let first = try await harness.command("c FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE UID)")
        let kept = try await harness.accounts.account(IMAPHarness.user).renderings("INBOX", uids: Array(1...10))
        #expect(kept.count == 4 && (1...3).allSatisfy { kept[$0]?.envelope != nil && kept[$0]?.bodyStructure != nil })
        #expect(kept[4]?.envelope == nil && kept[4]?.bodyStructure != nil, "a header not in ASCII is made each time")
        let second = try await harness.command("d FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE UID)")
        #expect(first.dropLast() == second.dropLast() && first.count >= 5, "\(first.count)")
        #expect(
            first.contains { $0.hasPrefix("* 4 FETCH (FLAGS () ENVELOPE (NIL {") },
            "the 8-bit subject as a literal"
        )
        await harness.close()
    }

    /// What a client says with ID goes into the log line, printable and bounded.
    @Test func theClientIDIsLoggedPrintableAndBounded() {
        #expect(IMAPConnection.describe(nil) == "-")
        #expect(
            IMAPConnection.describe([IMAPIDField("name", "Thunderbird"), IMAPIDField("version", "128.3.1")])
                == "name=Thunderbird version=128.3.1"
        )
        let hostile = IMAPConnection.describe([
            IMAPIDField("na\r\nme=", String(repeating: "v", count: 500) + "\u{1}"), IMAPIDField("os", nil),
        ])
        #expect(hostile == "name=" + String(repeating: "v", count: 40) + " os=NIL")
        let many = IMAPConnection.describe((0..<30).map { IMAPIDField("k\($0)", "v") })
        #expect(many.split(separator: " ").count == 8)
    }
}
