import NIOCore
import SMTPCore
import Testing

/// The framer's count of replies due when the client talks before the greeting: the greeting
/// answers no command, so the reply to each pipelined command still counts for that command.
@Suite struct SMTPInboundFramerTests {
    static func verbs(_ framer: inout SMTPInboundFramer) -> [String] {
        var verbs: [String] = []
        while let event = framer.next() {
            switch event {
            case .command(.success(let command)): verbs.append(command.verb)
            case .messageData: verbs.append("data")
            case .messageEnd: verbs.append("end")
            default: verbs.append("\(event)")
            }
        }
        return verbs
    }

    @Test func startTLSBeforeTheGreetingStillDropsThePlaintextBehindIt() {
        var framer = SMTPInboundFramer(limits: SMTPLimits())
        framer.append(ByteBuffer(string: "EHLO a\r\nSTARTTLS\r\nEHLO b\r\nMAIL FROM:<x@evil.example>\r\n"))
        #expect(Self.verbs(&framer) == ["EHLO", "STARTTLS"])
        framer.greetingSent(then: .commands)
        #expect(framer.repliesDue == 2)
        framer.replySent(then: .commands)  // EHLO's 250
        #expect(Self.verbs(&framer) == [], "STARTTLS's reply is still due")
        framer.replySent(then: .startTLS)
        #expect(framer.repliesDue == 0 && framer.bufferedBytes == 0, "the plaintext is dropped")
    }

    @Test func dataBeforeTheGreetingWaitsForThe354() {
        var framer = SMTPInboundFramer(limits: SMTPLimits())
        framer.append(
            ByteBuffer(string: "EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nQUIT\r\n.\r\n")
        )
        #expect(Self.verbs(&framer) == ["EHLO", "MAIL", "RCPT", "DATA"])
        framer.greetingSent(then: .commands)
        for _ in 0..<3 { framer.replySent(then: .commands) }
        #expect(Self.verbs(&framer) == [], "the content is not read as commands before the 354")
        framer.replySent(then: .messageData)
        #expect(Self.verbs(&framer) == ["data", "end"], "QUIT is a line of the message")
    }

    @Test func aRefusalInsteadOfTheGreetingCloses() {
        var framer = SMTPInboundFramer(limits: SMTPLimits())
        framer.append(ByteBuffer(string: "EHLO a\r\n"))
        #expect(Self.verbs(&framer) == ["EHLO"])
        framer.greetingSent(then: .close)
        #expect(framer.isClosed)
    }

    /// The text check of BDAT chunks, done in the framer as DATA's is: what each chunk end
    /// reports, for a message sent in chunks (one input, every reply already sent).
    @Test(
        arguments: [
            ("BDAT 4 LAST\r\nok\r\n", ["end []"]),
            ("BDAT 3\r\na\nbBDAT 4 LAST\r\nok\r\n", ["more", "end [bare LF]"]),
            // CR at the end of one chunk, LF at the start of the next: one CRLF.
            ("BDAT 2\r\na\rBDAT 3 LAST\r\n\nb\n", ["more", "end [bare LF]"]),
            ("BDAT 2\r\na\rBDAT 4 LAST\r\n\nb\r\n", ["more", "end []"]),
            ("BDAT 1 LAST\r\n\r", ["end [bare CR]"]),
            ("BDAT 3 LAST\r\na\0b", ["end [NUL]"]),
            // Another command ends the check: RSET starts the next message afresh.
            ("BDAT 3\r\na\nbRSET\r\nBDAT 4 LAST\r\nok\r\n", ["more", "RSET", "end []"]),
            ("BDAT 3\r\na\nbNOOP\r\nBDAT 4 LAST\r\nok\r\n", ["more", "NOOP", "end []"]),
            // A line too long across two chunks.
            (
                "BDAT 600\r\n" + String(repeating: "x", count: 600) + "BDAT 402 LAST\r\n"
                    + String(repeating: "x", count: 400) + "\r\n",
                ["more", "end [line too long]"]
            ),
        ]
    )
    func bdatTextIsCheckedAcrossChunks(input: String, expected: [String]) {
        var framer = SMTPInboundFramer(limits: SMTPLimits())
        framer.greetingSent(then: .commands)
        framer.append(ByteBuffer(string: input))
        var seen: [String] = []
        while let event = framer.next() {
            switch event {
            case .chunkEnd(nil): seen.append("more")
            case .chunkEnd(let defects?): seen.append("end [\(Self.names(defects).joined(separator: ", "))]")
            case .command(.success(let command)) where command.verb != "BDAT": seen.append(command.verb)
            default: break
            }
            if event.expectsReply { framer.replySent(then: .commands) }
        }
        #expect(seen == expected)
    }

    static func names(_ defects: MessageDefects) -> [String] {
        var names: [String] = []
        if defects.contains(.bareLineFeed) { names.append("bare LF") }
        if defects.contains(.bareCarriageReturn) { names.append("bare CR") }
        if defects.contains(.nul) { names.append("NUL") }
        if defects.contains(.lineTooLong) { names.append("line too long") }
        return names
    }
}
