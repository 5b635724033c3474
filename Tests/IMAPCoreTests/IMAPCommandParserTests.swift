import NIOCore
import Testing

@testable import IMAPCore

/// The command parser over what the framer delivers: every command of RFC 9051 and the
/// extensions, most rows taken from the RFCs' own examples, then hostile and malformed input.
@Suite struct IMAPCommandParserTests {
    /// Frames `input` (CRLF added; literals kept in memory, APPEND's streamed) and parses the
    /// command.
    static func parse(_ input: String) -> Result<TaggedCommand, IMAPParseError> {
        var framer = IMAPInboundFramer()
        framer.append(ByteBuffer(string: input + "\r\n"))
        while let event = framer.next() {
            switch event {
            case .command(let text): return IMAPCommandParser.parse(text)
            case .literal(let announcement):
                let append = String(
                    buffer: announcement.command.parts.first.flatMap {
                        if case .text(let text) = $0 { return text }
                        return nil
                    } ?? ByteBuffer()
                ).uppercased().contains("APPEND")
                framer.decide(append && announcement.size > 100 ? .stream : .inMemory)
            case .literalData, .literalEnd: continue
            default: return .failure(IMAPParseError("framing: \(event)"))
            }
        }
        return .failure(IMAPParseError("no command"))
    }

    static func command(_ input: String) -> IMAPCommand? {
        if case .success(let tagged) = Self.parse(input) { return tagged.command }
        return nil
    }

    static let inbox = IMAPMailboxName("INBOX")

    static func set(_ ranges: (UInt32?, UInt32?)...) -> IMAPSequenceSet {
        IMAPSequenceSet(
            ranges.map { IMAPSequenceSet.Range($0.0.map { .number($0) } ?? .last, $0.1.map { .number($0) } ?? .last) }
        )
    }

    @Test(
        arguments: [
            // Any state (RFC 9051 §6.1).
            ("a001 CAPABILITY", .capability),
            ("a002 noop", .noop),
            ("A023 LOGOUT", .logout),
            (
                "a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)",
                .id([IMAPIDField("name", "sodr"), IMAPIDField("version", "19.34"), IMAPIDField("vendor", nil)])
            ),
            ("a ID NIL", .id(nil)),
            ("a ID ()", .id([])),
            // Not authenticated (§6.2).
            ("a001 STARTTLS", .startTLS),
            ("A001 AUTHENTICATE SCRAM-SHA-256", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: nil)),
            (
                "A001 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
                .authenticate(mechanism: "PLAIN", initialResponse: "dGVzdAB0ZXN0AHRlc3Q=")
            ),
            ("A001 authenticate plain =", .authenticate(mechanism: "PLAIN", initialResponse: "=")),
            ("a001 LOGIN SMITH SESAME", .login(username: Array("SMITH".utf8), password: Array("SESAME".utf8))),
            (
                "a001 LOGIN \"smith@example.com\" \"a \\\"quoted\\\" pass\\\\word\"",
                .login(username: Array("smith@example.com".utf8), password: Array("a \"quoted\" pass\\word".utf8))
            ),
            (
                "a001 LOGIN {5}\r\nalice {8+}\r\nse cr\r\nt",
                .login(username: Array("alice".utf8), password: Array("se cr\r\nt".utf8))
            ),
            ("a001 LOGIN \"jürgen\" x]y", .login(username: Array("jürgen".utf8), password: Array("x]y".utf8))),
            // Authenticated (§6.3).
            ("t2 ENABLE IMAP4rev2", .enable(["IMAP4REV2"])),
            ("t1 ENABLE CONDSTORE X-GOOD-IDEA", .enable(["CONDSTORE", "X-GOOD-IDEA"])),
            ("A142 SELECT INBOX", .select(Self.inbox)),
            ("A932 EXAMINE blurdybloop", .examine(IMAPMailboxName("blurdybloop"))),
            ("A003 CREATE owatagusiam/", .create(IMAPMailboxName("owatagusiam/"))),
            ("A682 DELETE \"blurdy bloop\"", .delete(IMAPMailboxName("blurdy bloop"))),
            (
                "A683 RENAME blurdybloop sarasoop",
                .rename(from: IMAPMailboxName("blurdybloop"), to: IMAPMailboxName("sarasoop"))
            ),
            ("A002 SUBSCRIBE #news.comp.mail.mime", .subscribe(IMAPMailboxName("#news.comp.mail.mime"))),
            ("A002 UNSUBSCRIBE \"Entwürfe\"", .unsubscribe(IMAPMailboxName("Entwürfe"))),
            ("A101 LIST \"\" \"\"", .list(IMAPListCommand(reference: IMAPMailboxName(""), patterns: [[]]))),
            (
                "A202 LIST ~/Mail/ %",
                .list(IMAPListCommand(reference: IMAPMailboxName("~/Mail/"), patterns: [Array("%".utf8)]))
            ),
            (
                "A02 LIST (SUBSCRIBED REMOTE) \"\" \"*\"",
                .list(
                    IMAPListCommand(
                        selection: [.subscribed, .remote],
                        reference: IMAPMailboxName(""),
                        patterns: [Array("*".utf8)]
                    )
                )
            ),
            (
                "A03 LIST () \"\" (\"foo\" foo/*)",
                .list(
                    IMAPListCommand(reference: IMAPMailboxName(""), patterns: [Array("foo".utf8), Array("foo/*".utf8)])
                )
            ),
            (
                "A01 LIST \"\" % RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))",
                .list(
                    IMAPListCommand(
                        reference: IMAPMailboxName(""),
                        patterns: [Array("%".utf8)],
                        returnOptions: [.children, .specialUse, .status([.messages, .unseen])]
                    )
                )
            ),
            ("A001 NAMESPACE", .namespace),
            (
                "A042 STATUS blurdybloop (UIDNEXT MESSAGES SIZE)",
                .status(IMAPMailboxName("blurdybloop"), [.uidNext, .messages, .size])
            ),
            (
                "A003 APPEND saved-messages (\\Seen) {9}\r\nSubject: ",
                .append(
                    IMAPAppend(
                        mailbox: IMAPMailboxName("saved-messages"),
                        flags: [.seen],
                        internalDate: nil,
                        size: 9,
                        binary: false,
                        message: Array("Subject: ".utf8)
                    )
                )
            ),
            (
                "A004 APPEND INBOX (\\Seen $Forwarded) \" 7-Feb-1994 21:52:25 -0800\" ~{2+}\r\na\0",
                .append(
                    IMAPAppend(
                        mailbox: Self.inbox,
                        flags: [.seen, IMAPFlag("$Forwarded")],
                        internalDate: IMAPDateTime(
                            year: 1994,
                            month: 2,
                            day: 7,
                            hour: 21,
                            minute: 52,
                            second: 25,
                            zone: -480
                        ),
                        size: 2,
                        binary: true,
                        message: [UInt8(ascii: "a"), 0]
                    )
                )
            ),
            (
                "A005 APPEND Drafts {200+}\r\n" + String(repeating: "x", count: 200),
                .append(
                    IMAPAppend(
                        mailbox: IMAPMailboxName("Drafts"),
                        flags: [],
                        internalDate: nil,
                        size: 200,
                        binary: false,
                        message: nil
                    )
                )
            ),
            ("A002 IDLE", .idle),
            ("A003 CHECK", .check),
            ("A004 LSUB \"\" \"*\"", .lsub(reference: IMAPMailboxName(""), pattern: Array("*".utf8))),
            (
                "A005 LSUB #news. comp.mail.%",
                .lsub(reference: IMAPMailboxName("#news."), pattern: Array("comp.mail.%".utf8))
            ),
            // Selected (§6.4).
            ("A341 CLOSE", .close),
            ("A342 UNSELECT", .unselect),
            ("A202 EXPUNGE", .expunge),
            ("A003 UID EXPUNGE 3000:3002", .uidExpunge(Self.set((3000, 3002)))),
            (
                "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
                .fetch(
                    Self.set((2, 4)),
                    [
                        .flags,
                        .bodySection(IMAPSection(text: .headerFields(["DATE", "FROM"])), partial: nil, peek: false),
                    ],
                    uid: false
                )
            ),
            ("A999 UID FETCH 4827313:4828442 FLAGS", .fetch(Self.set((4_827_313, 4_828_442)), [.flags], uid: true)),
            ("A FETCH 1:* ALL", .fetch(Self.set((1, nil)), IMAPFetchItem.all, uid: false)),
            ("A FETCH *,1,3:5 FAST", .fetch(Self.set((nil, nil), (1, 1), (3, 5)), IMAPFetchItem.fast, uid: false)),
            ("A FETCH 1 full", .fetch(Self.set((1, 1)), IMAPFetchItem.full, uid: false)),
            (
                "a FETCH 1 (BODY.PEEK[1.2.MIME]<0.1024> BODY[] BODY[TEXT] BODY[2.HEADER] BODY[3.TEXT])",
                .fetch(
                    Self.set((1, 1)),
                    [
                        .bodySection(
                            IMAPSection(part: [1, 2], text: .mime),
                            partial: IMAPPartial(offset: 0, length: 1024),
                            peek: true
                        ),
                        .bodySection(IMAPSection(), partial: nil, peek: false),
                        .bodySection(IMAPSection(text: .text), partial: nil, peek: false),
                        .bodySection(IMAPSection(part: [2], text: .header), partial: nil, peek: false),
                        .bodySection(IMAPSection(part: [3], text: .text), partial: nil, peek: false),
                    ],
                    uid: false
                )
            ),
            (
                "t FETCH 1 (BINARY.PEEK[1] BINARY[] BINARY.SIZE[1.1] BINARY[2]<5.10>)",
                .fetch(
                    Self.set((1, 1)),
                    [
                        .binary(part: [1], partial: nil, peek: true), .binary(part: [], partial: nil, peek: false),
                        .binarySize(part: [1, 1]),
                        .binary(part: [2], partial: IMAPPartial(offset: 5, length: 10), peek: false),
                    ],
                    uid: false
                )
            ),
            (
                "t FETCH 1 (UID RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT BODY BODYSTRUCTURE ENVELOPE INTERNALDATE)",
                .fetch(
                    Self.set((1, 1)),
                    [
                        .uid, .rfc822Size, .rfc822, .rfc822Header, .rfc822Text, .body, .bodyStructure, .envelope,
                        .internalDate,
                    ],
                    uid: false
                )
            ),
            (
                "t FETCH 1 BODY[HEADER.FIELDS.NOT (Received \"X-Spam\")]",
                .fetch(
                    Self.set((1, 1)),
                    [
                        .bodySection(
                            IMAPSection(text: .headerFieldsNot(["Received", "X-Spam"])),
                            partial: nil,
                            peek: false
                        )
                    ],
                    uid: false
                )
            ),
            (
                "A003 STORE 2:4 +FLAGS (\\Deleted)",
                .store(Self.set((2, 4)), IMAPStore(operation: .add, silent: false, flags: [.deleted]), uid: false)
            ),
            (
                "A004 UID STORE 1 -FLAGS.SILENT \\Seen $Junk",
                .store(
                    Self.set((1, 1)),
                    IMAPStore(operation: .remove, silent: true, flags: [.seen, IMAPFlag("$Junk")]),
                    uid: true
                )
            ),
            (
                "A005 STORE 1 FLAGS ()",
                .store(Self.set((1, 1)), IMAPStore(operation: .replace, silent: false, flags: []), uid: false)
            ),
            ("A003 COPY 2:4 MEETING", .copy(Self.set((2, 4)), IMAPMailboxName("MEETING"), uid: false)),
            ("a UID MOVE 42:69 foo", .move(Self.set((42, 69)), IMAPMailboxName("foo"), uid: true)),
            // CONDSTORE and QRESYNC (RFC 7162), the rows from its examples.
            ("a SELECT INBOX (CONDSTORE)", .select(Self.inbox, IMAPSelectOptions(condStore: true))),
            (
                "A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
                .select(
                    Self.inbox,
                    IMAPSelectOptions(
                        qresync: IMAPQResync(
                            uidValidity: 67_890_007,
                            modSeq: 20_050_715_194_045_000,
                            knownUIDs: Self.set((41, 41), (43, 211), (214, 541))
                        )
                    )
                )
            ),
            (
                "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:15,40:100 1:15,41:101)))",
                .select(
                    Self.inbox,
                    IMAPSelectOptions(
                        qresync: IMAPQResync(
                            uidValidity: 67_890_007,
                            modSeq: 90_060_115_194_045_000,
                            knownUIDs: Self.set((41, 211), (214, 541)),
                            sequenceMatch: (Self.set((1, 15), (40, 100)), Self.set((1, 15), (41, 101)))
                        )
                    )
                )
            ),
            (
                "a EXAMINE INBOX (QRESYNC (1 2 (3 4)) CONDSTORE)",
                .examine(
                    Self.inbox,
                    IMAPSelectOptions(
                        condStore: true,
                        qresync: IMAPQResync(
                            uidValidity: 1,
                            modSeq: 2,
                            sequenceMatch: (Self.set((3, 3)), Self.set((4, 4)))
                        )
                    )
                )
            ),
            (
                "s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
                .fetch(
                    Self.set((1, nil)),
                    [.flags],
                    uid: true,
                    modifiers: IMAPFetchModifiers(changedSince: 12345, vanished: true)
                )
            ),
            (
                "a FETCH 1:3 (MODSEQ) (CHANGEDSINCE 9223372036854775807)",
                .fetch(
                    Self.set((1, 3)),
                    [.modSeq],
                    uid: false,
                    modifiers: IMAPFetchModifiers(changedSince: 9_223_372_036_854_775_807)
                )
            ),
            (
                "a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)",
                .store(
                    Self.set((6, 6), (4, 4), (8, 8)),
                    IMAPStore(operation: .add, silent: true, flags: [.deleted], unchangedSince: 12_121_230_045),
                    uid: true
                )
            ),
            (
                "a STORE 1 (unchangedsince 0) FLAGS ()",
                .store(
                    Self.set((1, 1)),
                    IMAPStore(operation: .replace, silent: false, flags: [], unchangedSince: 0),
                    uid: false
                )
            ),
            (
                "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338",
                .search(IMAPSearch(keys: [.modSeq(620_162_338)]), uid: false)
            ),
            (
                "a SEARCH OR NOT MODSEQ 0 SEEN",
                .search(IMAPSearch(keys: [.or(.not(.modSeq(0)), .flag(.seen))]), uid: false)
            ),
            ("a STATUS blurdybloop (HIGHESTMODSEQ)", .status(IMAPMailboxName("blurdybloop"), [.highestModSeq])),
            ("a ENABLE CONDSTORE QRESYNC", .enable(["CONDSTORE", "QRESYNC"])),
            // QUOTA (RFC 9208's examples).
            ("G0001 GETQUOTA \"!partition/sda4\"", .getQuota("!partition/sda4")),
            ("G0002 GETQUOTAROOT INBOX", .getQuotaRoot(Self.inbox)),
            ("S0000 SETQUOTA \"#user/alice\" (STORAGE 510)", .setQuota("#user/alice")),
            ("a SETQUOTA \"\" ()", .setQuota("")),
            ("a STATUS INBOX (DELETED-STORAGE DELETED)", .status(Self.inbox, [.deletedStorage, .deleted])),
            // OBJECTID and PREVIEW (RFC 8474, 8970).
            ("a STATUS foo (MAILBOXID)", .status(IMAPMailboxName("foo"), [.mailboxID])),
            ("a FETCH 1 (EMAILID THREADID)", .fetch(Self.set((1, 1)), [.emailID, .threadID], uid: false)),
            (
                "a SEARCH EMAILID M6d99ebf2-1 THREADID T64b478a1",
                .search(IMAPSearch(keys: [.emailID("M6d99ebf2-1"), .threadID("T64b478a1")]), uid: false)
            ),
            ("a FETCH 1 (PREVIEW)", .fetch(Self.set((1, 1)), [.preview(lazy: false)], uid: false)),
            ("a FETCH 1 PREVIEW", .fetch(Self.set((1, 1)), [.preview(lazy: false)], uid: false)),
            ("a FETCH 1 (PREVIEW (LAZY) UID)", .fetch(Self.set((1, 1)), [.preview(lazy: true), .uid], uid: false)),
            ("a FETCH 1 PREVIEW (lazy)", .fetch(Self.set((1, 1)), [.preview(lazy: true)], uid: false)),
            (
                "a FETCH 1 PREVIEW (CHANGEDSINCE 5)",
                .fetch(
                    Self.set((1, 1)),
                    [.preview(lazy: false)],
                    uid: false,
                    modifiers: IMAPFetchModifiers(changedSince: 5)
                )
            ),
        ] as [(String, IMAPCommand)]
    )
    func commands(input: String, expected: IMAPCommand) {
        let parsed = Self.parse(input)
        #expect(
            parsed == .success(TaggedCommand(tag: String(input.prefix { $0 != " " }), command: expected)),
            "\(parsed)"
        )
    }

    @Test(
        arguments: [
            (
                "A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
                IMAPSearch(
                    returnOptions: [.min, .count],
                    keys: [
                        .flag(.flagged), .since(IMAPDate(year: 1994, month: 2, day: 1)),
                        .not(.addressOrSubject(field: "FROM", "Smith")),
                    ]
                )
            ),
            ("A283 SEARCH RETURN () FLAGGED", IMAPSearch(returnOptions: [], keys: [.flag(.flagged)])),
            ("A284 SEARCH TEXT \"string not in mailbox\"", IMAPSearch(keys: [.text("string not in mailbox")])),
            ("A285 SEARCH CHARSET UTF-8 TEXT {12}\r\nотпуск", IMAPSearch(charset: "UTF-8", keys: [.text("отпуск")])),
            (
                "A286 SEARCH OR (SEEN UNDELETED) KEYWORD $Work 1:5,* UID 7:* LARGER 1000 SMALLER 5",
                IMAPSearch(keys: [
                    .or(.and([.flag(.seen), .notFlag(.deleted)]), .flag(IMAPFlag("$Work"))),
                    .sequence(Self.set((1, 5), (nil, nil))),
                    .uid(Self.set((7, nil))), .larger(1000), .smaller(5),
                ])
            ),
            (
                "A287 SEARCH HEADER X-Mailer \"\" SENTON \"29-Feb-2024\" BEFORE 1-jan-2000 ON 31-Dec-1999 SENTBEFORE 2-Jan-2000 SENTSINCE 3-Jan-2000",
                IMAPSearch(keys: [
                    .header("X-Mailer", ""), .sentOn(IMAPDate(year: 2024, month: 2, day: 29)),
                    .before(IMAPDate(year: 2000, month: 1, day: 1)),
                    .on(IMAPDate(year: 1999, month: 12, day: 31)), .sentBefore(IMAPDate(year: 2000, month: 1, day: 2)),
                    .sentSince(IMAPDate(year: 2000, month: 1, day: 3)),
                ])
            ),
            (
                "A288 SEARCH ALL ANSWERED DELETED DRAFT SEEN UNANSWERED UNDRAFT UNFLAGGED UNSEEN UNKEYWORD x NEW OLD RECENT BODY b CC c BCC d TO e SUBJECT f",
                IMAPSearch(keys: [
                    .all, .flag(.answered), .flag(.deleted), .flag(.draft), .flag(.seen), .notFlag(.answered),
                    .notFlag(.draft),
                    .notFlag(.flagged), .notFlag(.seen), .notFlag(IMAPFlag("x")), .new, .old, .recent, .body("b"),
                    .addressOrSubject(field: "CC", "c"), .addressOrSubject(field: "BCC", "d"),
                    .addressOrSubject(field: "TO", "e"),
                    .addressOrSubject(field: "SUBJECT", "f"),
                ])
            ),
        ] as [(String, IMAPSearch)]
    )
    func searches(input: String, expected: IMAPSearch) {
        let parsed = Self.parse(input)
        #expect(
            parsed
                == .success(
                    TaggedCommand(tag: String(input.prefix { $0 != " " }), command: .search(expected, uid: false))
                ),
            "\(parsed)"
        )
    }

    /// Malformed commands: the error keeps the tag when one could be read, for `tag BAD`.
    @Test(
        arguments: [
            ("", nil, "tag"),
            ("A1", nil, "tag"),
            ("+A NOOP", nil, "tag"),
            ("(A1 NOOP", nil, "tag"),
            ("A1 FROB", "A1", "unknown command FROB"),
            ("A1 NOOP extra", "A1", "unexpected text"),
            ("A1 LOGIN alice", "A1", "expected a space"),
            ("A1 LOGIN \"a\\x\" b", "A1", "only \" and \\"),
            ("A1 LOGIN \"open b", "A1", "closing quote"),
            ("A1 LOGIN {3+}\r\na\0b x", "A1", "NUL"),
            ("A1 SELECT \"\"", "A1", "empty mailbox"),
            ("A1 SELECT", "A1", "expected a space"),
            ("A1 FETCH 0 FLAGS", "A1", "0 where"),
            ("A1 FETCH 4294967296 FLAGS", "A1", "over 4294967295"),
            ("A1 FETCH 1 ()", "A1", "empty list"),
            ("A1 FETCH 1 (FLAGS", "A1", "expected )"),
            ("A1 FETCH 1 BODY[HEADER.FIELDS ()]", "A1", "empty list"),
            ("A1 FETCH 1 BODY[MIME]", "A1", "unknown section"),
            ("A1 FETCH 1 BODY[]<0.0>", "A1", "length 0"),
            ("A1 FETCH 1 BODY[HEADER.FIELDS (a:b)]", "A1", "not a header field name"),
            ("A1 FETCH 1 RFC822.PEEK", "A1", "unknown FETCH item"),
            ("A1 STORE 1 +FLAGS (\\Recent)", "A1", "not a flag a client may set"),
            ("A1 STORE 1 +LABELS (x)", "A1", "STORE takes FLAGS"),
            ("A1 APPEND INBOX (\\Seen)", "A1", "expected a space"),
            ("A1 APPEND INBOX (\\Seen) x", "A1", "expected a literal"),
            ("A1 APPEND INBOX \"31-Feb-2024 00:00:00 +0000\" {1}\r\nx", "A1", "no such date"),
            ("A1 APPEND INBOX \"1-Feb-2024 24:00:00 +0000\" {1}\r\nx", "A1", "no such time"),
            ("A1 APPEND INBOX \"1-Feb-2024 12:00:00 0000\" {1}\r\nx", "A1", "zone"),
            ("A1 SEARCH SINCE 30-Feb-2024", "A1", "no such date"),
            ("A1 SEARCH BEFORE 1-Foo-2020", "A1", "month"),
            ("A1 SEARCH FROBNICATE", "A1", "unknown search key"),
            ("A1 SEARCH RETURN (ALL", "A1", "expected )"),
            ("A1 SEARCH " + String(repeating: "NOT ", count: 40) + "SEEN", "A1", "nested too deep"),
            (
                "A1 SEARCH " + String(repeating: "(", count: 40) + "SEEN" + String(repeating: ")", count: 40), "A1",
                "nested too deep"
            ),
            ("A1 UID FROB 1", "A1", "unknown UID command"),
            ("A1 STATUS INBOX (MESSAGES BOGUS)", "A1", "unknown status item"),
            ("A1 LIST (BOGUS) \"\" *", "A1", "unknown LIST selection"),
            ("A1 LIST \"\" * RETURN (BOGUS)", "A1", "unknown LIST return"),
            ("A1 AUTHENTICATE PLAIN !!", "A1", "base64"),
            // CONDSTORE and QRESYNC's grammar (RFC 7162 §7).
            ("A1 SELECT INBOX ()", "A1", "empty list"),
            ("A1 SELECT INBOX (BOGUS)", "A1", "unknown SELECT parameter"),
            ("A1 SELECT INBOX (QRESYNC)", "A1", "expected a space"),
            ("A1 SELECT INBOX (QRESYNC (0 1))", "A1", "0 where"),
            ("A1 SELECT INBOX (QRESYNC (1 0))", "A1", "mod-sequence of 0"),
            ("A1 SELECT INBOX (QRESYNC (1 2 *))", "A1", "* is not allowed"),
            ("A1 SELECT INBOX (QRESYNC (1 2 1:5 ))", "A1", "expected ("),
            ("A1 SELECT INBOX (QRESYNC (1 2 (1:2)))", "A1", "expected a space"),
            ("A1 SELECT INBOX (QRESYNC (1 2) QRESYNC (1 2))", "A1", "QRESYNC given twice"),
            ("A1 FETCH 1 FLAGS (CHANGEDSINCE 0)", "A1", "mod-sequence of 0"),
            ("A1 FETCH 1 FLAGS (CHANGEDSINCE \"1\")", "A1", "expected a number"),
            ("A1 FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", "A1", "too large"),
            ("A1 FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "A1", "given twice"),
            ("A1 FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "A1", "VANISHED is for UID FETCH"),
            ("A1 UID FETCH 1 FLAGS (VANISHED)", "A1", "VANISHED needs CHANGEDSINCE"),
            ("A1 UID FETCH 1 FLAGS (BOGUS 1)", "A1", "unknown FETCH modifier"),
            ("A1 STORE 1 (UNCHANGEDSINCE \"0\") +FLAGS (x)", "A1", "expected a number"),
            ("A1 STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (x)", "A1", "given twice"),
            ("A1 STORE 1 (BOGUS 1) +FLAGS (x)", "A1", "unknown STORE modifier"),
            ("A1 SEARCH MODSEQ", "A1", "expected a space"),
            ("A1 GETQUOTAROOT", "A1", "expected a space"),
            ("A1 SEARCH EMAILID a.b", "A1", "an object id"),
            ("A1 SEARCH EMAILID " + String(repeating: "x", count: 256), "A1", "an object id"),
            ("A1 FETCH 1 (PREVIEW (LAZY FUZZY))", "A1", "a PREVIEW modifier is LAZY"),
            ("A1 SETQUOTA \"\" (STORAGE)", "A1", "expected a space"),
            ("A1 SETQUOTA \"\" STORAGE 5", "A1", "expected ("),
            ("A1 SEARCH MODSEQ \"/x/y\" all 5", "A1", "unknown MODSEQ entry"),
            ("A1 SEARCH MODSEQ \"/flags/\\\\seen\" mine 5", "A1", "priv, shared or all"),
            // A literal8 or a streamed literal is APPEND's alone: no NUL in a name or a password.
            ("A1 LOGIN ~{11+}\r\nalice\0admin {2+}\r\npw", "A1", "literal8"),
            ("A1 CREATE ~{7+}\r\na\0/../x", "A1", "literal8"),
            ("A1 LOGIN APPEND {200+}\r\n" + String(repeating: "p", count: 200), "A1", "too large for a string"),
            // Control characters and bytes that are not UTF-8 never reach a mailbox name.
            ("A1 CREATE {5+}\r\na\r\nb\u{1}", "A1", "control characters"),
            ("A1 RENAME INBOX {3+}\r\na\u{7F}b", "A1", "control characters"),
            ("A1 LIST \"\" {3+}\r\na\nb", "A1", "control characters"),
        ] as [(String, String?, String)]
    )
    func malformed(input: String, tag: String?, text: String) {
        guard case .failure(let error) = Self.parse(input) else {
            Issue.record("\(input) was parsed")
            return
        }
        #expect(error.tag == tag, "\(error)")
        #expect(error.text.contains(text), "\(error.text)")
    }

    /// A literal mailbox name that is not UTF-8 is refused.
    @Test func mailboxNamesAreUTF8() {
        let parsed = IMAPCommandParser.parse(
            IMAPCommandText([
                .text(ByteBuffer(string: "A1 SELECT ")),
                .literal(ByteBuffer(bytes: [0x61, 0xFF, 0x62]), binary: false),
                .text(ByteBuffer()),
            ])
        )
        #expect(parsed == .failure(IMAPParseError(tag: "A1", "a mailbox name with control characters or not in UTF-8")))
    }

    /// A quoted string that is not UTF-8 is refused; names echoed in errors are printable.
    @Test func bytesThatAreNotTextAreRefused() {
        var buffer = ByteBuffer(string: "A1 LOGIN \"")
        buffer.writeBytes([0xC3, 0x28])
        buffer.writeString("\" x")
        let parsed = IMAPCommandParser.parse(IMAPCommandText([.text(buffer)]))
        #expect(parsed == .failure(IMAPParseError(tag: "A1", "a quoted string that is not UTF-8")))
        var command = ByteBuffer(string: "A1 FR")
        command.writeBytes([0x1B, 0x5B, 0x32, 0x4A])
        if case .failure(let error) = IMAPCommandParser.parse(IMAPCommandText([.text(command)])) {
            #expect(!error.text.utf8.contains(0x1B), "\(error.text)")
        } else {
            Issue.record("parsed")
        }
    }

    /// Whatever the input, the parser answers (no trap, no hang): random commands built from
    /// the grammar's own characters.
    @Test func randomInputNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(
            "A1 ()[]<>{}.*%:,\"\\+-~$0123456789FETCHSEARCHNOTORBODYPEEKHEADERUIDLISTRETURN\r\n\u{0}".utf8
        )
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<60, using: &generator)
            var bytes = ByteBuffer(string: "T ")
            for _ in 0..<length { bytes.writeInteger(alphabet.randomElement(using: &generator)!) }
            var parts: [IMAPCommandText.Part] = [.text(bytes)]
            if Bool.random(using: &generator) {
                parts += [.literal(ByteBuffer(string: "lit"), binary: false), .text(ByteBuffer(string: " x"))]
            }
            _ = IMAPCommandParser.parse(IMAPCommandText(parts))
        }
    }
}
