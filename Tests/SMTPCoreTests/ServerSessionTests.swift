import MailCore
import NIOCore
import SMTPCore
import Testing

@Suite struct ServerSessionTests {
    static let headers = "From: <a@example.net>\r\nSubject: t\r\n\r\n"

    func greeted(limits: SMTPLimits = SMTPLimits()) async -> SessionHarness {
        var harness = await SessionHarness(limits: limits)
        #expect(harness.replies.map(\.code) == [220])
        #expect(await harness.send("EHLO client.example\r\n") == ["250"])
        return harness
    }

    @Test func greetingAndEhloAdvertiseTheExtensions() async {
        var harness = await SessionHarness()
        #expect(harness.replies.first?.description == "220 mx.test ESMTP Petrel\r\n")
        await harness.send("EHLO client.example\r\n")
        #expect(
            harness.replies.last?.description
                == "250-mx.test Hello client.example\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n"
                + "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n"
        )
    }

    /// `isMessageOpen` (what bounds a transfer with `timeouts.data_total`): from the 354 or the
    /// first chunk, across commands between chunks, until the message is committed or dropped.
    @Test func aMessageIsOpenFromItsFirstChunkToItsEnd() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(!harness.session.isMessageOpen)
        await harness.send("BDAT 1\r\nx")
        #expect(harness.session.isMessageOpen)
        await harness.send("NOOP\r\nHELP\r\nVRFY b\r\nMAIL FROM:<c@example.net>\r\n")
        #expect(harness.session.isMessageOpen, "commands between chunks leave the message open")
        await harness.send("RSET\r\n")
        #expect(!harness.session.isMessageOpen)
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n")
        #expect(harness.session.isMessageOpen)
        await harness.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        #expect(!harness.session.isMessageOpen, "committed")
    }

    @Test func aWholeTransaction() async {
        var harness = await self.greeted()
        #expect(await harness.sendForText("MAIL FROM:<a@example.net>\r\n") == ["250 2.1.0 Sender <a@example.net> OK"])
        #expect(await harness.sendForText("RCPT TO:<b@mx.test>\r\n") == ["250 2.1.5 Recipient <b@mx.test> OK"])
        #expect(await harness.send("DATA\r\n") == ["354"])
        #expect(await harness.send(Self.headers + "Hello\r\n..dot\r\n.\r\n") == ["250"])
        #expect(harness.stored.count == 1)
        #expect(harness.stored[0].content == Self.headers + "Hello\r\n.dot\r\n")
        #expect(harness.stored[0].envelope.reversePath.description == "<a@example.net>")
        #expect(await harness.send("QUIT\r\n") == ["221"])
        #expect(harness.closed)
    }

    @Test func pipelinedGroupIsAnsweredInOrder() async {
        var harness = await self.greeted()
        harness.verdicts["<x@elsewhere.example>"] = .rejected(SMTPReply(554, EnhancedStatusCode(5, 7, 1), "relay"))
        #expect(
            await harness.send(
                "MAIL FROM:<a@example.net>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n"
            )
                == ["250", "554", "250", "354"]
        )
        #expect(
            await harness.send("x\r\n.\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n") == [
                "250", "250", "250", "354",
            ]
        )
        #expect(await harness.send("y\r\n.\r\nQUIT\r\n") == ["250", "221"])
        #expect(harness.stored.map(\.content) == ["x\r\n", "y\r\n"])
    }

    @Test(arguments: [
        ("RCPT TO:<b@mx.test>\r\n", "503"),
        ("DATA\r\n", "503"),
        ("BDAT 3 LAST\r\nabc", "503"),
        ("RSET\r\n", "250"),
        ("NOOP\r\n", "250"),
        ("VRFY b\r\n", "252"),
        ("EXPN list\r\n", "502"),
        ("HELP\r\n", "214"),
        ("STARTTLS\r\n", "502"),
        ("AUTH PLAIN\r\n", "503"),
        ("XYZZY\r\n", "500"),
    ])
    func commandsOutsideATransaction(line: String, expected: String) async {
        var harness = await self.greeted()
        #expect(await harness.send(line) == [expected])
        #expect(await harness.send("NOOP\r\n") == ["250"])
    }

    @Test func mailBeforeEhloIsRefused() async {
        var harness = await SessionHarness()
        #expect(await harness.send("MAIL FROM:<a@example.net>\r\n") == ["503"])
        #expect(await harness.send("HELO client\r\nMAIL FROM:<a@example.net>\r\n") == ["250", "250"])
    }

    @Test func sequenceErrors() async {
        var harness = await self.greeted()
        #expect(await harness.send("MAIL FROM:<a@example.net>\r\nMAIL FROM:<a@example.net>\r\n") == ["250", "503"])
        #expect(await harness.sendForText("DATA\r\n") == ["554 5.5.1 No valid recipients"])
        #expect(await harness.send("RCPT TO:<b@mx.test>\r\nEHLO again\r\nDATA\r\n") == ["250", "250", "503"])
        #expect(
            await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nRSET\r\nDATA\r\n") == [
                "250", "250", "250", "503",
            ]
        )
        #expect(harness.stored.isEmpty)
    }

    @Test func quitInsideATransactionDeliversNothing() async {
        var harness = await self.greeted()
        #expect(
            await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nQUIT\r\n") == ["250", "250", "221"]
        )
        #expect(harness.stored.isEmpty && harness.closed)
    }

    @Test func recipientLimitAndDuplicates() async {
        var limits = SMTPLimits()
        limits.recipients = 2
        var harness = await self.greeted(limits: limits)
        await harness.send("MAIL FROM:<a@example.net>\r\n")
        #expect(
            await harness.send("RCPT TO:<b@mx.test>\r\nRCPT TO:<b@mx.test>\r\nRCPT TO:<c@mx.test>\r\n") == [
                "250", "250", "250",
            ]
        )
        #expect(await harness.sendForText("RCPT TO:<d@mx.test>\r\n") == ["452 4.5.3 Too many recipients"])
        // A 452 is not an error that counts towards closing the session.
        for _ in 0..<20 { #expect(await harness.send("RCPT TO:<e@mx.test>\r\n") == ["452"]) }
        #expect(await harness.send("DATA\r\nx\r\n.\r\n") == ["354", "250"])
        #expect(harness.stored[0].envelope.recipients.map(\.forwardPath.description) == ["<b@mx.test>", "<c@mx.test>"])
    }

    @Test func declaredSizeOverTheLimit() async {
        var harness = await self.greeted(limits: SMTPLimits(messageSize: 1000, recipients: 100))
        #expect(
            await harness.sendForText("MAIL FROM:<a@example.net> SIZE=1001\r\n") == [
                "552 5.3.4 Message size exceeds fixed maximum message size of 1000 octets"
            ]
        )
        #expect(await harness.send("MAIL FROM:<a@example.net> SIZE=1000\r\n") == ["250"])
    }

    @Test func contentOverTheLimitIsRefusedAtTheEnd() async {
        var harness = await self.greeted(limits: SMTPLimits(messageSize: 1000, recipients: 100))
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n")
        var replies: [String] = []
        for _ in 0..<100 { replies += await harness.send(String(repeating: "x", count: 98) + "\r\n") }
        #expect(replies.isEmpty)
        #expect(await harness.sendForText(".\r\n").first?.hasPrefix("552 5.3.4") == true)
        #expect(harness.stored.isEmpty && !harness.messageOpen)
        #expect(await harness.send("NOOP\r\n") == ["250"])
    }

    /// The end-of-data look-alikes of the SMTP smuggling research: one reply for the whole block,
    /// the message refused, and the smuggled transaction never executed.
    @Test(arguments: [
        "\n.\n", "\r.\r", "\n.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\r\n\u{0}.\r\n", "\r\n.\u{0}\r\n", "\r\r\n.\r\r\n",
        "\r.\r\n",
    ])
    func smugglingIsRefusedAsOneMessage(fakeEnd: String) async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n")
        let replies = await harness.sendForText(
            Self.headers + "before\(fakeEnd)MAIL FROM:<ceo@mx.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\nSmuggled\r\n.\r\n"
        )
        #expect(replies.count == 1)
        #expect(replies.first?.hasPrefix("554 5.6.0") == true)
        #expect(harness.stored.isEmpty)
        #expect(await harness.send("NOOP\r\n") == ["250"])
    }

    @Test func lfOnlyMessageNeverEndsUntilCRLFDotCRLF() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n")
        #expect(
            await harness.send("Subject: x\n\nbody\n.\nMAIL FROM:<a@example.net>\nRCPT TO:<b@mx.test>\nDATA\n").isEmpty
        )
        #expect(await harness.send("\r\n.\r\n") == ["554"])
        #expect(harness.stored.isEmpty)
    }

    @Test func longLineIsRefused() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n")
        #expect(await harness.send(String(repeating: "D", count: 5000) + "\r\n.\r\n") == ["554"])
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n")
        #expect(await harness.send(String(repeating: "C", count: 998) + "\r\n.\r\n") == ["250"])
    }

    @Test func overlongCommandLineIsAnsweredOnce() async {
        var harness = await self.greeted()
        #expect(
            await harness.sendForText("NOOP " + String(repeating: "A", count: 507) + "XINJECT\r\nNOOP\r\n") == [
                "500 5.5.2 Line too long; a command line is at most 512 octets", "250 2.0.0 OK",
            ]
        )
    }

    @Test func utf8AddressesNeedSMTPUTF8() async {
        var harness = await self.greeted()
        #expect(
            await harness.sendForText("MAIL FROM:<j\u{c3}\u{b6}s@example.net>\r\n").first?.hasPrefix("553 5.6.7")
                == true
        )
        #expect(await harness.send("MAIL FROM:<j\u{c3}\u{b6}s@example.net> SMTPUTF8\r\n") == ["250"])
        #expect(
            await harness.send("RSET\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<j\u{c3}\u{b6}s@mx.test>\r\n") == [
                "250", "250", "553",
            ]
        )
        #expect(
            await harness.send("RSET\r\nMAIL FROM:<a@example.net> SMTPUTF8\r\nRCPT TO:<j\u{c3}\u{b6}s@mx.test>\r\n")
                == [
                    "250", "250", "250",
                ]
        )
    }

    @Test func tenErrorsCloseTheSession() async {
        var harness = await self.greeted()
        for _ in 0..<9 { #expect(await harness.send("XYZZY\r\n") == ["500"]) }
        #expect(await harness.sendForText("XYZZY\r\n") == ["421 4.7.0 mx.test Too many errors; closing connection"])
        #expect(harness.closed)
        #expect(await harness.send("NOOP\r\n").isEmpty)
    }

    @Test func timeoutSays421AndCloses() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\nhalf a mess")
        #expect(await harness.timeout() == ["421"])
        #expect(harness.replies.last?.enhancedCode == EnhancedStatusCode(4, 4, 2))
        #expect(harness.closed && harness.stored.isEmpty)
    }

    @Test func shutdownWhenIdleClosesAtOnce() async {
        var harness = await self.greeted()
        #expect(await harness.shutdown() == ["421"])
        #expect(harness.replies.last?.enhancedCode == EnhancedStatusCode(4, 3, 2))
        #expect(harness.closed)
    }

    @Test func shutdownLetsTheMessageInFlightFinish() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\nfirst part\r\n")
        #expect(await harness.shutdown().isEmpty)
        #expect(await harness.send("second part\r\n.\r\n") == ["250"])
        #expect(harness.closed)
        #expect(harness.stored.map(\.content) == ["first part\r\nsecond part\r\n"])
    }

    @Test func storageFailures() async {
        var harness = await self.greeted()
        harness.openFailure = .insufficientStorage
        #expect(
            await harness.sendForText("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n").last?.hasPrefix(
                "452 4.3.1"
            ) == true
        )
        harness.openFailure = nil
        harness.commitFailure = .insufficientStorage
        #expect(await harness.send("DATA\r\nx\r\n.\r\n") == ["354", "452"])
        #expect(harness.stored.isEmpty)
        #expect(await harness.send("NOOP\r\n") == ["250"])
    }

    // MARK: - BDAT (RFC 3030)

    @Test func bdatSingleChunk() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(await harness.send("BDAT 5 LAST\r\nhello") == ["250"])
        #expect(harness.stored.map(\.content) == ["hello"])
    }

    @Test func bdatChunksAndDotLinesAreData() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        let first = "line\r\n.\r\nMAIL FROM:<x@y.z>\r\n"
        #expect(
            await harness.sendForText("BDAT \(first.utf8.count)\r\n\(first)") == [
                "250 2.0.0 \(first.utf8.count) octets received"
            ]
        )
        #expect(await harness.send("BDAT 13 LAST\r\nsecond part\r\nNOOP\r\n") == ["250", "250"])
        #expect(harness.stored.map(\.content) == [first + "second part\r\n"])
    }

    @Test func bdatZeroLast() async {
        var harness = await self.greeted()
        #expect(
            await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\n") == [
                "250", "250", "250", "250",
            ]
        )
        #expect(harness.stored.map(\.content) == ["abc"])
    }

    @Test func bdatWithoutMailIsConsumedNotExecuted() async {
        var harness = await self.greeted()
        #expect(await harness.send("BDAT 17 LAST\r\nXINJECT\r\nNOOP\r\n\r\n") == ["503"])
        #expect(await harness.send("NOOP\r\n") == ["250"])
    }

    @Test func bdatWithoutRecipients() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\n")
        #expect(await harness.send("BDAT 17 LAST\r\nXINJECT\r\nNOOP\r\n\r\n") == ["554"])
        #expect(await harness.send("NOOP\r\n") == ["250"])
    }

    @Test func dataAfterBdatIsRefused() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(await harness.send("BDAT 5\r\nabcdeDATA\r\n") == ["250", "503"])
        #expect(await harness.send("RSET\r\n") == ["250"])
        #expect(!harness.messageOpen)
    }

    @Test func bdatSizeBeyondTheLimitClosesTheSession() async {
        var harness = await self.greeted(limits: SMTPLimits(messageSize: 1000, recipients: 100))
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(await harness.send("BDAT 99999999999999999999 LAST\r\n") == ["501"])
        #expect(harness.closed)
        var other = await self.greeted(limits: SMTPLimits(messageSize: 1000, recipients: 100))
        await other.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(await other.send("BDAT 1001 LAST\r\n") == ["552"])
        #expect(other.closed)
    }

    @Test func bdatTotalBeyondTheLimitEndsTheTransaction() async {
        var harness = await self.greeted(limits: SMTPLimits(messageSize: 1000, recipients: 100))
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        let chunk = String(repeating: "x", count: 600)
        #expect(await harness.send("BDAT 600\r\n\(chunk)") == ["250"])
        #expect(await harness.send("BDAT 600 LAST\r\n\(chunk)") == ["552"])
        #expect(!harness.messageOpen && harness.stored.isEmpty)
        #expect(await harness.send("BDAT 1 LAST\r\nx") == ["503"])
    }

    @Test func bdatContentFollowsTheLineRules() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(await harness.send("BDAT 4\r\na\nb\r") == ["250"])
        #expect(await harness.send("BDAT 1 LAST\r\n\n") == ["554"])
        #expect(harness.stored.isEmpty)
    }

    /// The text check spans the message's chunks whatever commands the session answers between
    /// them while the message stays open, and starts afresh only with the next message.
    @Test(arguments: [
        ("BDAT 3\r\na\nbNOOP\r\nBDAT 0 LAST\r\n", ["250", "250", "554"]),
        ("BDAT 3\r\na\nbVRFY bob\r\nHELP\r\nBDAT 2 LAST\r\n\r\n", ["250", "252", "214", "554"]),
        ("BDAT 3\r\na\0bMAIL FROM:<c@example.net>\r\nBDAT 2 LAST\r\n\r\n", ["250", "503", "554"]),
        ("BDAT 3\r\na\nbXYZZY\r\nBDAT 2 LAST\r\n\r\n", ["250", "500", "554"]),
        ("BDAT 2\r\na\rNOOP\r\nBDAT 3 LAST\r\n\nb\n", ["250", "250", "554"]),
        // A CR at a chunk's end and the LF at the next one's start are one line end.
        ("BDAT 2\r\na\rNOOP\r\nBDAT 4 LAST\r\n\nb\r\n", ["250", "250", "250"]),
        // RSET ends the message: what its chunks held does not count against the next one.
        (
            "BDAT 3\r\na\nbRSET\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\nBDAT 4 LAST\r\nok\r\n",
            ["250", "250", "250", "250", "250"]
        ),
    ])
    func bdatTextIsCheckedAcrossCommands(input: String, replies: [String]) async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(await harness.send(input) == replies)
    }

    @Test func shortChunkKeepsWaiting() async {
        var harness = await self.greeted()
        await harness.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@mx.test>\r\n")
        #expect(await harness.send("BDAT 50 LAST\r\nonly twenty octets..").isEmpty)
        #expect(await harness.send("QUIT\r\n").isEmpty)
        #expect(await harness.send(String(repeating: "z", count: 24)) == ["250"])
        #expect(harness.stored.map(\.content) == ["only twenty octets..QUIT\r\n" + String(repeating: "z", count: 24)])
    }

    /// Whatever a client sends, each event that expects a reply gets exactly one (checked inside
    /// the harness), and the session never wedges.
    @Test func randomDialoguesKeepTheOneReplyInvariant() async {
        let lines = [
            "EHLO a\r\n", "HELO b\r\n", "MAIL FROM:<a@b.example>\r\n", "MAIL FROM:<>\r\n", "RCPT TO:<c@mx.test>\r\n",
            "RCPT TO:<>\r\n", "DATA\r\n", "x\r\n.\r\n", "\n.\n", "BDAT 3\r\nabc", "BDAT 2 LAST\r\nde",
            "BDAT 0 LAST\r\n",
            "RSET\r\n", "NOOP\r\n", "VRFY x\r\n", "XYZZY\r\n", "\r\n", String(repeating: "Q", count: 600) + "\r\n",
            "MAIL FROM:<j\u{c3}\u{b6}@x.example> SMTPUTF8\r\n", "BDAT x\r\n",
        ]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var harness = await SessionHarness()
            harness.verdicts["<c@mx.test>"] = Bool.random(using: &generator) ? .accepted([Mailbox("c@mx.test")!]) : nil
            for _ in 0..<30 {
                let chosen = (0..<Int.random(in: 1...4, using: &generator)).map { _ in
                    lines.randomElement(using: &generator)!
                }
                await harness.send(chosen.joined())
                if harness.closed { break }
            }
        }
    }
}
