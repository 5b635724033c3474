import NIOCore
import SMTPCore
import Testing

@Suite struct MessageTextValidatorTests {
    static func defects(_ pieces: [String]) -> MessageDefects {
        var validator = MessageTextValidator(maximumLineLength: 998)
        for piece in pieces { validator.inspect(ByteBuffer(bytes: piece.unicodeScalars.map { UInt8($0.value) })) }
        return validator.finalDefects
    }

    static let cases: [([String], MessageDefects)] = [
        ([""], []),
        (["a\r\nb\r\n"], []),
        (["a\r", "\nb"], []),
        (["line\r\n.\r\nMAIL FROM:<x>\r\n"], []),
        (["a\nb"], .bareLineFeed),
        (["a\rb"], .bareCarriageReturn),
        (["a\r"], .bareCarriageReturn),
        (["a\r", "b"], .bareCarriageReturn),
        (["\u{0}"], .nul),
        ([String(repeating: "x", count: 999)], .lineTooLong),
        ([String(repeating: "x", count: 998) + "\r\n"], []),
    ]

    @Test(arguments: cases)
    func validation(pieces: [String], expected: MessageDefects) {
        #expect(Self.defects(pieces) == expected)
    }
}
