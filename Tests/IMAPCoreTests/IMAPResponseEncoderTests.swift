import NIOCore
import Testing

@testable import IMAPCore

/// Responses as octets: RFC 9051's examples, and whatever the session puts in them still
/// well formed (one line of text, strings quoted or literal, names in the client's encoding).
@Suite struct IMAPResponseEncoderTests {
    static func encoded(_ response: IMAPResponse, utf8: Bool = false) -> String {
        String(buffer: IMAPResponseEncoder(utf8: utf8).encode(response))
    }

    @Test(
        arguments: [
            (IMAPResponse.continuation("Ready for literal data"), "+ Ready for literal data\r\n"),
            (.tagged("a001", .ok, nil, "LOGIN completed"), "a001 OK LOGIN completed\r\n"),
            (.tagged("A142", .ok, .readWrite, "SELECT completed"), "A142 OK [READ-WRITE] SELECT completed\r\n"),
            (
                .tagged("A1", .no, .authenticationFailed, "Authentication failed"),
                "A1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
            ),
            (
                .tagged("A003", .ok, .appendUID(validity: 38_505, uid: 3955), "APPEND completed"),
                "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"
            ),
            (
                .tagged(
                    "A004",
                    .ok,
                    .copyUID(
                        validity: 38_505,
                        from: IMAPSequenceSet([.init(.number(304), .number(304)), .init(.number(319), .number(320))]),
                        to: IMAPSequenceSet([.init(.number(3956), .number(3958))])
                    ),
                    "Done"
                ),
                "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
            ),
            (
                .untagged(.ok, .permanentFlags([.deleted, .seen], newKeywords: true), "Limited"),
                "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
            ),
            (.untagged(.ok, .uidValidity(3_857_529_045), "UIDs valid"), "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
            (.untagged(.bye, nil, "Autologout; idle for too long"), "* BYE Autologout; idle for too long\r\n"),
            (.tagged("A1", .bad, .tooBig, ""), "A1 BAD [TOOBIG] done\r\n"),
            (
                .capability(["IMAP4rev2", "STARTTLS", "AUTH=PLAIN", "LOGINDISABLED"]),
                "* CAPABILITY IMAP4rev2 STARTTLS AUTH=PLAIN LOGINDISABLED\r\n"
            ),
            (.enabled(["IMAP4rev2"]), "* ENABLED IMAP4rev2\r\n"),
            (.enabled([]), "* ENABLED\r\n"),
            (
                .list(attributes: ["\\HasNoChildren", "\\Sent"], delimiter: "/", name: "Sent", lsub: false),
                "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
            ),
            (
                .list(attributes: ["\\Noselect"], delimiter: nil, name: "", lsub: true),
                "* LSUB (\\Noselect) NIL \"\"\r\n"
            ),
            (
                .status(name: "blurdybloop", [IMAPStatusValue(.messages, 231), IMAPStatusValue(.uidNext, 44292)]),
                "* STATUS \"blurdybloop\" (MESSAGES 231 UIDNEXT 44292)\r\n"
            ),
            (
                .flags([.answered, .flagged, .deleted, .seen, .draft, IMAPFlag("$Forwarded")]),
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"
            ),
            (.exists(172), "* 172 EXISTS\r\n"),
            (.recent(1), "* 1 RECENT\r\n"),
            (.expunge(3), "* 3 EXPUNGE\r\n"),
            (.search([2, 84, 882]), "* SEARCH 2 84 882\r\n"),
            (.search([]), "* SEARCH\r\n"),
            (
                .esearch(tag: "A282", uid: false, min: 2, max: nil, count: 3, all: nil),
                "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
            ),
            (
                .esearch(
                    tag: "A3",
                    uid: true,
                    min: nil,
                    max: nil,
                    count: nil,
                    all: IMAPSequenceSet([.init(.number(4), .number(7))])
                ),
                "* ESEARCH (TAG \"A3\") UID ALL 4:7\r\n"
            ),
            (.namespace(prefix: "", delimiter: "/"), "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
            (
                .id([IMAPIDField("name", "Petrel"), IMAPIDField("support-url", nil)]),
                "* ID (\"name\" \"Petrel\" \"support-url\" NIL)\r\n"
            ),
            (.id(nil), "* ID NIL\r\n"),
            // CONDSTORE and QRESYNC (RFC 7162's examples).
            (.search([2, 5, 6], modSeq: 917_162_500), "* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"),
            (.search([], modSeq: 917_162_500), "* SEARCH\r\n"),
            (
                .esearch(
                    tag: "a",
                    uid: false,
                    min: nil,
                    max: nil,
                    count: nil,
                    all: IMAPSequenceSet([.init(.number(1), .number(3)), .init(.number(5), .number(5))]),
                    modSeq: 1236
                ),
                "* ESEARCH (TAG \"a\") ALL 1:3,5 MODSEQ 1236\r\n"
            ),
            (
                .vanished(
                    earlier: true,
                    IMAPSequenceSet([.init(.number(41), .number(41)), .init(.number(43), .number(116))])
                ),
                "* VANISHED (EARLIER) 41,43:116\r\n"
            ),
            (.vanished(earlier: false, IMAPSequenceSet([.init(.number(405), .number(410))])), "* VANISHED 405:410\r\n"),
            (
                .untagged(.ok, .highestModSeq(715_194_045_007), "Highest"),
                "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"
            ),
            (
                .tagged(
                    "d105",
                    .ok,
                    .modified(IMAPSequenceSet([.init(.number(7), .number(7)), .init(.number(9), .number(9))])),
                    "Conditional STORE failed"
                ),
                "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n"
            ),
            (.fetch(50, [.modSeq(12_111_230_047)]), "* 50 FETCH (MODSEQ (12111230047))\r\n"),
            // OBJECTID and PREVIEW (RFC 8474's and 8970's examples); an id is kept to its characters.
            (
                .fetch(1, [.emailID("M6d99ac3275bb4e"), .threadID("T64b478a75b7ea9")]),
                "* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9))\r\n"
            ),
            (.fetch(2, [.threadID(nil), .preview(nil)]), "* 2 FETCH (THREADID NIL PREVIEW NIL)\r\n"),
            (.fetch(3, [.preview("Hello \"you\"")]), "* 3 FETCH (PREVIEW \"Hello \\\"you\\\"\")\r\n"),
            (
                .untagged(.ok, .mailboxID("F2212ea87-6097-4256-9d51-71338625\r\n)"), "Ok"),
                "* OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Ok\r\n"
            ),
            (
                .status(name: "foo", [IMAPStatusValue(.mailboxID, text: "F2212ea87")]),
                "* STATUS \"foo\" (MAILBOXID (F2212ea87))\r\n"
            ),
            // QUOTA (RFC 9208's examples).
            (
                .quota(root: "", [IMAPQuotaResource("STORAGE", usage: 10, limit: 512)]),
                "* QUOTA \"\" (STORAGE 10 512)\r\n"
            ),
            (.quotaRoot(mailbox: "INBOX", roots: [""]), "* QUOTAROOT \"INBOX\" \"\"\r\n"),
            (.quotaRoot(mailbox: "comp.mail.mime", roots: []), "* QUOTAROOT \"comp.mail.mime\"\r\n"),
            (
                .status(name: "blurdybloop", [IMAPStatusValue(.highestModSeq, 7_011_231_777)]),
                "* STATUS \"blurdybloop\" (HIGHESTMODSEQ 7011231777)\r\n"
            ),
        ] as [(IMAPResponse, String)]
    )
    func responses(response: IMAPResponse, expected: String) {
        #expect(Self.encoded(response) == expected)
    }

    /// Mailbox names in the client's encoding: modified UTF-7 until UTF-8 is on.
    @Test func mailboxNamesFollowTheClientsEncoding() {
        let list = IMAPResponse.list(attributes: [], delimiter: "/", name: "Entwürfe/Tom & \"Jerry\"", lsub: false)
        #expect(Self.encoded(list) == "* LIST () \"/\" \"Entw&APw-rfe/Tom &- \\\"Jerry\\\"\"\r\n")
        #expect(Self.encoded(list, utf8: true) == "* LIST () \"/\" \"Entwürfe/Tom & \\\"Jerry\\\"\"\r\n")
    }

    /// Whatever the session puts in a response, it stays one response: text loses CR, LF and
    /// NUL; a string with them goes out as a literal; a tag that is no tag is `*`.
    @Test func hostileContentStaysInItsResponse() {
        #expect(Self.encoded(.tagged("A1", .no, nil, "bad\r\nA2 OK forged\0")) == "A1 NO bad  A2 OK forged \r\n")
        #expect(Self.encoded(.tagged("A1\r\n* BYE", .ok, nil, "x")) == "* OK x\r\n")
        #expect(Self.encoded(.continuation("a\nb")) == "+ a b\r\n")
        #expect(
            Self.encoded(.id([IMAPIDField("name", "x\r\n* BYE")]), utf8: true)
                == "* ID (\"name\" {8}\r\nx\r\n* BYE)\r\n"
        )
        #expect(Self.encoded(.capability(["IMAP4rev2 LOGINDISABLED)"])) == "* CAPABILITY IMAP4rev2LOGINDISABLED\r\n")
    }

    /// Found in review: bytes that are not UTF-8 are never quoted to a UTF-8 client, NUL goes
    /// nowhere, text cannot pass for a response code, a `+` tag cannot pass for a continuation,
    /// and names that filter to nothing are left out.
    @Test func whatStrictClientsWouldRefuse() {
        var out = ByteBuffer()
        IMAPResponseEncoder(utf8: true).writeNString([0x63, 0x61, 0x66, 0xE9], into: &out)
        #expect(Array(out.readableBytesView) == Array("{4}\r\ncaf".utf8) + [0xE9])
        out.clear()
        IMAPResponseEncoder(utf8: true).writeNString([0x61, 0x00, 0x62], into: &out)
        #expect(String(buffer: out) == "\"a b\"")
        #expect(Self.encoded(.tagged("A1", .no, nil, "[ALERT] fake")) == "A1 NO (ALERT] fake\r\n")
        #expect(Self.encoded(.tagged("+", .ok, nil, "x")) == "* OK x\r\n")
        #expect(Self.encoded(.capability(["IMAP4rev2", " ", "\\"])) == "* CAPABILITY IMAP4rev2\r\n")
        #expect(Self.encoded(.flags([.seen, IMAPFlag("\\"), IMAPFlag("$A(b)")])) == "* FLAGS (\\Seen $Ab)\r\n")
    }
}
