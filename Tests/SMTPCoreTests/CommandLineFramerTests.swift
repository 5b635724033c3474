import NIOCore
import SMTPCore
import Testing

@Suite struct CommandLineFramerTests {
    /// Feeds `pieces` one after another and collects every frame, as text ("!" for too long).
    static func frames(_ pieces: [String], limit: Int = 16) -> [String] {
        var framer = CommandLineFramer(maximumLength: limit)
        var buffer = ByteBuffer()
        var result: [String] = []
        for piece in pieces {
            buffer.writeString(piece)
            while let frame = framer.next(from: &buffer) {
                switch frame {
                case .line(let line): result.append(String(buffer: line))
                case .tooLong: result.append("!")
                }
            }
        }
        return result
    }

    @Test(arguments: [
        (["NOOP\r\n"], ["NOOP"]),
        (["NOOP\r\nQUIT\r\n"], ["NOOP", "QUIT"]),
        (["NO", "OP\r", "\nQU", "IT\r\n"], ["NOOP", "QUIT"]),
        (["\r\n"], [""]),
        // A bare LF or CR does not end a line: it stays inside, for the parser to refuse.
        (["MAIL\nRCPT\r\n"], ["MAIL\nRCPT"]),
        (["A\rB\r\n"], ["A\rB"]),
        (["A\n", "\r\n"], ["A\n"]),
        (["A\r", "\r\n"], ["A\r"]),
        // Exactly at the limit (16 with CRLF) and one over.
        (["12345678901234\r\n"], ["12345678901234"]),
        (["123456789012345\r\nNOOP\r\n"], ["!", "NOOP"]),
        // Over the limit before the CRLF arrives: discarded, reported once when it ends.
        (["1234567890", "1234567890", "1234567890", "\r\nNOOP\r\n"], ["!", "NOOP"]),
        (["12345678901234567890\r", "\nNOOP\r\n"], ["!", "NOOP"]),
        // The tail of a long line is never a command.
        (["123456789012345QUIT\r\n"], ["!"]),
        (["123456789012345", "\n", "QUIT\r\n"], ["!"]),
    ])
    func framing(pieces: [String], expected: [String]) {
        #expect(Self.frames(pieces) == expected)
    }

    @Test func byteByByte() {
        let text = "EHLO a\r\nMAIL FROM:<a@b>\r\n\r\nNOOP\r\n"
        #expect(Self.frames(text.map { String($0) }, limit: 512) == ["EHLO a", "MAIL FROM:<a@b>", "", "NOOP"])
    }

    @Test func memoryStaysBoundedOnEndlessLine() {
        var framer = CommandLineFramer(maximumLength: 512)
        var buffer = ByteBuffer()
        for _ in 0..<1000 {
            buffer.writeString(String(repeating: "x", count: 1000))
            #expect(framer.next(from: &buffer) == nil)
            #expect(buffer.readableBytes <= 1000)
        }
        buffer.writeString("\r\nNOOP\r\n")
        #expect(framer.next(from: &buffer) == .tooLong)
        #expect(framer.next(from: &buffer) == .line(ByteBuffer(string: "NOOP")))
    }
}
