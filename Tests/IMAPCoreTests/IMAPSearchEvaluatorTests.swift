import MailCore
import Testing

@testable import IMAPCore

/// SEARCH keys over one message, text decoded and compared without regard to case.
@Suite struct IMAPSearchEvaluatorTests {
    static let text = """
        From: =?utf-8?q?J=C3=B6rg?= <jorg@example.test>\r
        To: alice@example.test\r
        Subject: =?iso-8859-1?q?Caf=E9?= meeting\r
        Date: Tue, 1 Dec 2026 09:00:00 -0800\r
        X-Tag: Project Petrel\r
        Content-Type: multipart/mixed; boundary=b\r
        \r
        --b\r
        Content-Type: text/plain; charset=utf-8\r
        Content-Transfer-Encoding: quoted-printable\r
        \r
        Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r
        --b\r
        Content-Type: application/octet-stream\r
        Content-Transfer-Encoding: base64\r
        \r
        bmVlZGxlIGluIGEgYmluYXJ5\r
        --b--\r

        """

    static let mailbox = IMAPSelectedMailbox(
        name: "INBOX",
        readOnly: false,
        uidValidity: 1,
        uidNext: 8,
        messages: [IMAPSelectedMailbox.Message(uid: 3, modSeq: 1, flags: []), .init(uid: 7, modSeq: 1, flags: [.seen])]
    )

    static func matches(_ keys: [IMAPSearchKey]) -> Bool {
        let evaluator = IMAPSearchEvaluator(keys: keys, mailbox: Self.mailbox)
        let bytes = Array(Self.text.utf8)
        let message = IMAPSearchEvaluator.Message(
            sequence: 2,
            uid: 7,
            flags: [.seen, IMAPFlag("$Work")],
            size: UInt64(bytes.count),
            // 2026-12-07 12:00 UTC
            internalDate: 1_796_644_800
        )
        let withStructure = evaluator.matches(
            message,
            content: .init(message: bytes, structure: MIMEPart(message: bytes))
        )
        // Made from the octets alone (SEARCH's way), the answer is the same.
        let fromOctets = evaluator.matches(message, content: .init(message: bytes))
        #expect(withStructure == fromOctets, "\(keys)")
        return withStructure
    }

    /// Which searches the kept header fields answer without the message file.
    @Test func keptHeaderKeysAreKnown() {
        func only(_ keys: [IMAPSearchKey]) -> Bool {
            IMAPSearchEvaluator(keys: keys, mailbox: Self.mailbox).needsOnlyKeptHeader
        }
        #expect(only([.addressOrSubject(field: "FROM", "x"), .since(IMAPDate(year: 2026, month: 6, day: 1))]))
        #expect(only([.not(.sentOn(IMAPDate(year: 2026, month: 6, day: 1))), .header("Content-Type", "text")]))
        #expect(only([.or(.header("subject", "a"), .flag(.seen))]))
        #expect(!only([.header("X-Tag", "petrel")]), "a field the structure does not keep")
        #expect(!only([.or(.addressOrSubject(field: "TO", "a"), .body("b"))]))
        #expect(!only([.text("x")]))
        // The kept fields alone give the answers the whole message gives.
        let bytes = Array(Self.text.utf8)
        let kept = MIMEPart(message: bytes).header.fields.flatMap(\.raw)
        let message = IMAPSearchEvaluator.Message(sequence: 2, uid: 7, flags: [], size: 1, internalDate: 0)
        for key in Self.table.map(\.0) where only([key]) {
            let evaluator = IMAPSearchEvaluator(keys: [key], mailbox: Self.mailbox)
            #expect(
                evaluator.matches(message, content: .init(message: kept))
                    == evaluator.matches(message, content: .init(message: bytes)),
                "\(key)"
            )
        }
    }

    /// The octet search under BODY and TEXT: ASCII letters in any case, nothing past the range.
    @Test func asciiSearchIgnoresCaseAndStaysInItsRange() {
        let octets = Array("Hello NeEdLe world".utf8)
        #expect(ASCIISearch.contains(octets, 0..<octets.count, Array("needle".utf8)))
        #expect(!ASCIISearch.contains(octets, 0..<10, Array("needle".utf8)))
        #expect(ASCIISearch.contains(octets, 6..<12, Array("needle".utf8)))
        #expect(!ASCIISearch.contains(octets, 0..<octets.count, Array("needles".utf8)))
        #expect(ASCIISearch.contains(octets, 0..<octets.count, Array("e w".utf8)))
        #expect(ASCIISearch.contains(Array("[x]".utf8), 0..<3, Array("[x]".utf8)), "non-letters as they are")
    }

    static let table: [(IMAPSearchKey, Bool)] = [
        (.all, true),
        (.flag(.seen), true), (.notFlag(.seen), false), (.flag(IMAPFlag("$work")), true), (.flag(.flagged), false),
        (.new, false), (.old, true), (.recent, false),
        (.addressOrSubject(field: "FROM", "jörg"), true), (.addressOrSubject(field: "FROM", "JÖRG"), true),
        (.addressOrSubject(field: "SUBJECT", "café"), true), (.addressOrSubject(field: "TO", "bob"), false),
        (.header("X-Tag", "petrel"), true), (.header("x-tag", ""), true), (.header("X-Other", ""), false),
        (.body("grüße"), true), (.body("KÖLN"), true), (.body("needle"), false),
        (.text("meeting"), true), (.text("köln"), true),
        (.on(IMAPDate(year: 2026, month: 12, day: 7)), true), (.before(IMAPDate(year: 2026, month: 12, day: 7)), false),
        (.since(IMAPDate(year: 2026, month: 12, day: 7)), true),
        (.sentOn(IMAPDate(year: 2026, month: 12, day: 1)), true),
        (.sentBefore(IMAPDate(year: 2026, month: 12, day: 1)), false),
        (.sentSince(IMAPDate(year: 2026, month: 11, day: 30)), true),
        (.larger(10), true), (.smaller(10), false),
        (.uid(IMAPSequenceSet([.init(.number(7), .number(7))])), true),
        (.uid(IMAPSequenceSet([.init(.number(1), .number(3))])), false),
        (.sequence(IMAPSequenceSet([.init(.number(2), .last)])), true),
        (.sequence(IMAPSequenceSet([.init(.number(9), .number(9))])), false),
        (.not(.flag(.seen)), false), (.or(.flag(.flagged), .flag(.seen)), true),
        (.and([.flag(.seen), .larger(1_000_000)]), false),
    ]

    @Test func everyKey() {
        for (key, expected) in Self.table {
            #expect(Self.matches([key]) == expected, "\(key)")
        }
    }

    /// Header values are searched in their octets when decoding and unfolding would change
    /// nothing, and decoded otherwise: the answers are those of the decoded, unfolded text.
    @Test(
        arguments: [
            (IMAPSearchKey.addressOrSubject(field: "SUBJECT", "long subject"), true),  // across the fold
            (.addressOrSubject(field: "SUBJECT", "LONG"), true),
            (.addressOrSubject(field: "FROM", "JORG@EXAMPLE"), true),
            (.addressOrSubject(field: "FROM", "jörg <"), true),  // in the decoded encoded word
            (.addressOrSubject(field: "FROM", "=?utf-8"), false),  // the encoding is not text
            (.addressOrSubject(field: "TO", "ALICE@"), true),
            (.addressOrSubject(field: "TO", " alice"), false),  // values are trimmed
            (.header("X-Tag", "ject pet"), true),
            (.header("X-Tag", "ject  pet"), false),
            (.text("subject"), true),  // in a value (the folded Subject's)
            (.text("x-tag"), false),  // a field's name is not text
            (.text("petrel"), true),
        ] as [(IMAPSearchKey, Bool)]
    )
    func headerValuesAreSearchedAsText(key: IMAPSearchKey, expected: Bool) {
        let bytes = Array(
            """
            From: =?utf-8?q?J=C3=B6rg?= <jorg@example.test>\r
            To: alice@example.test\r
            Subject: a long\r
             subject\r
            X-Tag: Project Petrel\r
            \r
            body\r

            """.utf8
        )
        let evaluator = IMAPSearchEvaluator(keys: [key], mailbox: Self.mailbox)
        let message = IMAPSearchEvaluator.Message(sequence: 2, uid: 7, flags: [], size: 1, internalDate: 0)
        #expect(evaluator.matches(message, content: .init(message: bytes)) == expected)
    }

    @Test func whichKeysNeedTheMessage() {
        #expect(!IMAPSearchEvaluator(keys: [.flag(.seen), .larger(3)], mailbox: Self.mailbox).needsContent)
        #expect(IMAPSearchEvaluator(keys: [.not(.body("x"))], mailbox: Self.mailbox).needsContent)
    }

    @Test(arguments: [
        ("Tue, 1 Dec 2026 09:00:00 -0800", 2026, 12, 1), ("1 Dec 26 09:00 GMT", 2026, 12, 1),
        ("Sat, 31 Jan 1998 00:00:00 +0000", 1998, 1, 31),
    ])
    func datesOfDateFields(text: String, year: Int, month: Int, day: Int) {
        #expect(
            IMAPSearchEvaluator.dateDay(text.lowercased()) == IMAPDate(year: year, month: month, day: day).daysSince1970
        )
    }

    @Test func aDateFieldThatIsNoDate() {
        #expect(IMAPSearchEvaluator.dateDay("yesterday, around noon") == nil)
    }
}
