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
}
