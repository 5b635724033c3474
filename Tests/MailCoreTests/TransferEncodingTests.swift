import Testing

@testable import MailCore

/// Content-Transfer-Encoding undone (for IMAP's BINARY) and RFC 2047 encoded-words decoded
/// (for SEARCH), leniently as mail readers do.
@Suite struct TransferEncodingTests {
    static func decoded(_ text: String, _ encoding: String) -> String? {
        TransferEncoding.decode(Array(text.utf8), encoding: encoding).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test(
        arguments: [
            ("SGVsbG8sIHdv\r\ncmxkIQ==\r\n", "base64", "Hello, world!"),
            ("SGVs bG8*", "base64", "Hello"),  // outside the alphabet: skipped
            ("SGVsbG8=garbage", "base64", "Hello"),  // `=` ends the data
            ("caf=C3=A9 =\r\nau lait", "quoted-printable", "café au lait"),
            ("a=3Db=\nc", "quoted-printable", "a=bc"),
            ("trailing   \r\nspace\t\r\n", "quoted-printable", "trailing\r\nspace\r\n"),
            ("bad =ZZ and =4", "quoted-printable", "bad =ZZ and =4"),
            ("soft at end=", "quoted-printable", "soft at end"),
            ("as is\r\n", "7BIT", "as is\r\n"),
            ("as is", "8bit", "as is"),
            ("as is", "binary", "as is"),
        ] as [(String, String, String)]
    )
    func transferEncodings(input: String, encoding: String, expected: String) {
        #expect(Self.decoded(input, encoding) == expected)
    }

    @Test func unknownEncodingsAreSaidSo() {
        #expect(Self.decoded("x", "x-uuencode") == nil)
    }

    @Test(
        arguments: [
            ("=?utf-8?q?J=C3=B6rg?= <j@x>", "Jörg <j@x>"),
            ("=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße"),
            ("=?iso-8859-1?q?caf=E9?= au lait", "café au lait"),
            ("=?windows-1252?q?=80uro?=", "€uro"),
            ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  // white space between words goes
            ("=?utf-8?q?a_b?= c", "a b c"),
            ("=?utf-8*en?q?hi?=", "hi"),
            ("=?koi8-r?q?x?=", "=?koi8-r?q?x?="),  // a charset not known stays as written
            ("=?utf-8?x?y?=", "=?utf-8?x?y?="),
            ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
            ("plain = text ?=", "plain = text ?="),
            ("", ""),
        ] as [(String, String)]
    )
    func encodedWords(input: String, expected: String) {
        #expect(EncodedWords.decode(input) == expected)
    }

    @Test func randomInputNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("=?qQbB_utf-8AZaz09+/ \r\n\t".utf8)
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0..<50, using: &generator)).map { _ in
                alphabet.randomElement(using: &generator)!
            }
            _ = EncodedWords.decode(String(decoding: bytes, as: UTF8.self))
            _ = TransferEncoding.quotedPrintable(bytes)
            _ = TransferEncoding.base64(bytes)
        }
    }
}
