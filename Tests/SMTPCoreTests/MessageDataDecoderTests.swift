import NIOCore
import SMTPCore
import Testing

@Suite struct MessageDataDecoderTests {
    struct Outcome: Equatable, CustomStringConvertible {
        var content: String
        var finished: Bool
        var defects: MessageDefects
        var rest: String
        var description: String {
            "content=\(self.content.debugDescription) finished=\(self.finished) defects=\(self.defects.rawValue) rest=\(self.rest.debugDescription)"
        }
    }

    static func decode(_ pieces: [String], lineLimit: Int = 998, sizeLimit: Int = 1 << 20) -> Outcome {
        var decoder = MessageDataDecoder(maximumLineLength: lineLimit, maximumSize: sizeLimit)
        var content = ""
        var rest = ByteBuffer()
        var finished = false
        for piece in pieces {
            var buffer = ByteBuffer(bytes: piece.unicodeScalars.map { UInt8($0.value) })
            if finished {
                rest.writeBuffer(&buffer)
                continue
            }
            let result = decoder.decode(&buffer)
            if let decoded = result.content { content += String(decoding: decoded.readableBytesView, as: UTF8.self) }
            if result.finished {
                finished = true
                rest.writeBuffer(&buffer)
            } else {
                #expect(buffer.readableBytes == 0)
            }
        }
        return Outcome(
            content: decoder.defects.isEmpty ? content : "",
            finished: finished,
            defects: decoder.defects,
            rest: String(decoding: rest.readableBytesView, as: UTF8.self)
        )
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let pieces: [String]
        let content: String
        let finished: Bool
        let defects: MessageDefects
        let rest: String
        var testDescription: String { self.pieces.joined(separator: "|").debugDescription }

        init(
            _ pieces: [String],
            _ content: String,
            finished: Bool = true,
            _ defects: MessageDefects = [],
            rest: String = ""
        ) {
            self.pieces = pieces
            self.content = content
            self.finished = finished
            self.defects = defects
            self.rest = rest
        }
    }

    static let cases: [Case] = [
        Case([".\r\n"], ""),
        Case(["a\r\n.\r\n"], "a\r\n"),
        Case(["a\r\nb\r\n.\r\n"], "a\r\nb\r\n"),
        Case(["a\r\n.\r\nQUIT\r\n"], "a\r\n", rest: "QUIT\r\n"),
        Case(["a\r", "\n", ".", "\r", "\n"], "a\r\n"),
        Case(["a\r\n.", "\r\n"], "a\r\n"),
        Case(["a\r\n.\r", "\nMAIL"], "a\r\n", rest: "MAIL"),
        // Dot-stuffing (RFC 5321 4.5.2).
        Case(["..a\r\n.\r\n"], ".a\r\n"),
        Case(["..\r\n.\r\n"], ".\r\n"),
        Case(["...\r\n.\r\n"], "..\r\n"),
        Case([".a\r\n.\r\n"], "a\r\n"),
        Case(["x\r\n..y\r\n.\r\n"], "x\r\n.y\r\n"),
        Case(["x\r\n.", ".y\r\n.\r\n"], "x\r\n.y\r\n"),
        Case(["a.\r\n.\r\n"], "a.\r\n"),
        // Not the end: a dot line followed by more text.
        Case(["a\r\n.b\r\n.\r\n"], "a\r\nb\r\n"),
        Case(["a\r\n", ".\r\n"], "a\r\n"),
        Case(["a\r\n.\r"], "a\r\n", finished: false),
        Case(["a\r\n."], "a\r\n", finished: false),
        Case(["a"], "a", finished: false),
        // Smuggling look-alikes: all content with a defect; only CRLF.CRLF ends the data.
        Case(["a\n.\nMAIL\r\n.\r\n"], "", [.bareLineFeed]),
        Case(["a\r.\rMAIL\r\n.\r\n"], "", [.bareCarriageReturn]),
        Case(["a\n.\r\nMAIL\r\n.\r\n"], "", [.bareLineFeed]),
        Case(["a\r\n.\nMAIL\r\n.\r\n"], "", [.bareLineFeed]),
        Case(["a\r\n.\rMAIL\r\n.\r\n"], "", [.bareCarriageReturn]),
        Case(["a\n.\rMAIL\r\n.\r\n"], "", [.bareLineFeed, .bareCarriageReturn]),
        Case(["a\r.\r\nMAIL\r\n.\r\n"], "", [.bareCarriageReturn]),
        Case(["a\r\n\u{0}.\r\nMAIL\r\n.\r\n"], "", [.nul]),
        Case(["a\r\n.\u{0}\r\nMAIL\r\n.\r\n"], "", [.nul]),
        Case(["a\r\r\n.\r\r\nMAIL\r\n.\r\n"], "", [.bareCarriageReturn]),
        Case(["a\n.\n"], "", finished: false, [.bareLineFeed]),
        Case(["\n.\n\r\n.\r\n"], "", [.bareLineFeed]),
        Case(["x\r\r\n.\r\n"], "", [.bareCarriageReturn]),
        Case(["nul:\u{0}:here\r\n.\r\n"], "", [.nul]),
        Case(["x\r", "y\r\n.\r\n"], "", [.bareCarriageReturn]),
    ]

    @Test(arguments: cases)
    func decoding(_ testCase: Case) {
        let outcome = Self.decode(testCase.pieces)
        #expect(
            outcome
                == Outcome(
                    content: testCase.content,
                    finished: testCase.finished,
                    defects: testCase.defects,
                    rest: testCase.rest
                )
        )
    }

    @Test func lineLength() {
        let ok = String(repeating: "C", count: 998)
        #expect(Self.decode(["\(ok)\r\n.\r\n"]).defects == [])
        #expect(Self.decode(["\(ok)C\r\n.\r\n"]).defects == [.lineTooLong])
        // A stuffed dot does not count: the line's content is 998 octets.
        #expect(Self.decode([".\(ok)\r\n.\r\n"]).defects == [])
        // The long line is followed by "." and a smuggled command: still one message.
        let outcome = Self.decode(["\(String(repeating: "A", count: 1022)).\r\nMAIL FROM:<x>\r\n.\r\n"])
        #expect(outcome.defects == [.lineTooLong])
        #expect(outcome.finished && outcome.rest.isEmpty)
    }

    @Test func sizeLimitStopsOutputButReadsToTheEnd() {
        var decoder = MessageDataDecoder(maximumLineLength: 998, maximumSize: 100)
        var produced = 0
        for _ in 0..<100 {
            var buffer = ByteBuffer(string: String(repeating: "x", count: 50) + "\r\n")
            let result = decoder.decode(&buffer)
            produced += result.content?.readableBytes ?? 0
            #expect(!result.finished)
        }
        #expect(produced <= 104)
        var end = ByteBuffer(string: ".\r\nNOOP\r\n")
        #expect(decoder.decode(&end).finished)
        #expect(decoder.defects == [.tooLarge])
        #expect(String(buffer: end) == "NOOP\r\n")
    }

    /// Wherever the input is split, the result is the same as decoding it whole.
    @Test func anySplitGivesTheSameResult() {
        let alphabet: [String] = ["a", ".", "\r", "\n", "\u{0}"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var scalars = (0..<Int.random(in: 0..<40, using: &generator)).flatMap { _ in
                alphabet.randomElement(using: &generator)!.unicodeScalars
            }
            scalars += "\r\n.\r\nTAIL".unicodeScalars
            let whole = Self.decode([String(String.UnicodeScalarView(scalars))])
            var pieces: [String] = []
            var remaining = scalars[...]
            while !remaining.isEmpty {
                let length = Int.random(in: 1...remaining.count, using: &generator)
                pieces.append(String(String.UnicodeScalarView(remaining.prefix(length))))
                remaining = remaining.dropFirst(length)
            }
            #expect(Self.decode(pieces) == whole, "\(pieces)")
            #expect(whole.finished)
            #expect(whole.rest.hasSuffix("TAIL"))
        }
    }
}
