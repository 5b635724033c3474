import NIOCore
import Testing

@testable import MailStore

@Suite struct LineEndingConverterTests {
    static func convert(_ pieces: [String]) -> String {
        var converter = LineEndingConverter()
        var output = ByteBuffer()
        for piece in pieces { converter.convert(ByteBuffer(string: piece), into: &output) }
        converter.finish(into: &output)
        return String(buffer: output)
    }

    @Test(arguments: [
        ([""], ""),
        (["a\r\nb\r\n"], "a\nb\n"),
        (["a\r", "\nb"], "a\nb"),
        (["a\r", "b"], "a\rb"),
        (["a\r"], "a\r"),
        (["\r", "\r", "\n"], "\r\n"),
        (["\r\n\r\n"], "\n\n"),
        (["x\r\r\n"], "x\r\n"),
        (["no line breaks"], "no line breaks"),
    ])
    func conversion(pieces: [String], expected: String) {
        #expect(Self.convert(pieces) == expected)
    }

    @Test func anySplitGivesTheSameResult() {
        let text = "Subject: x\r\n\r\nline\r\n\rodd\r\r\nend\r\n"
        let whole = Self.convert([text])
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            for second in cut...bytes.count {
                let pieces = [bytes[..<cut], bytes[cut..<second], bytes[second...]].map {
                    String(decoding: $0, as: UTF8.self)
                }
                #expect(Self.convert(pieces) == whole)
            }
        }
    }
}
