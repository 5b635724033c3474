import MailCore
import Testing

/// `DisplayName.encode`: what `petrel sendmail -F` puts before the address it adds to From.
struct DisplayNameTests {
    @Test(arguments: [
        ("Alice Example", "Alice Example"),
        ("  Alice  ", "Alice"),
        ("", ""),
        ("O'Brien-Smith", "O'Brien-Smith"),
        ("Example, Alice", "\"Example, Alice\""),
        ("Alice \"Al\" Example", "\"Alice \\\"Al\\\" Example\""),
        ("back\\slash", "\"back\\\\slash\""),
        ("J. R. Hacker", "\"J. R. Hacker\""),
        ("<alice@example.com>", "\"<alice@example.com>\""),
        ("Zoë", "=?UTF-8?B?Wm/Dqw==?="),
    ])
    func encodes(_ name: String, _ phrase: String) throws {
        #expect(try DisplayName.encode(name) == phrase)
    }

    /// A line break (or any control character) would end the From field and start another of
    /// the sender's choosing: refused, never cleaned up into something else.
    @Test(arguments: [
        "Eve\r\nReply-To: x@evil.example", "Eve\nBcc: x@evil.example", "Eve\rX: y", "Eve\u{0}", "Eve\u{1B}[31m",
        "Eve\u{7F}", "Eve\u{85}", "Eve\u{2028}Bcc: x", "tab\tinside",
    ])
    func refusesControlCharacters(_ name: String) {
        #expect(throws: DisplayName.Failure.controlCharacter) { try DisplayName.encode(name) }
    }

    @Test func refusesAParagraph() {
        #expect(throws: DisplayName.Failure.tooLong) { try DisplayName.encode(String(repeating: "a", count: 257)) }
    }

    /// RFC 2047 §2: no encoded-word over 75 characters; §5: each holds whole characters.
    @Test func longNamesBecomeSeveralEncodedWordsOfWholeCharacters() throws {
        let name = String(repeating: "é€😀", count: 12)
        let phrase = try DisplayName.encode(name)
        let words = phrase.components(separatedBy: "\r\n ")
        #expect(words.count > 1)
        var decoded: [UInt8] = []
        for word in words {
            #expect(word.count <= 75 && word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="), "\(word)")
            let octets = try #require(Base64.decode(String(word.dropFirst(10).dropLast(2))))
            #expect(String(validating: octets, as: UTF8.self) != nil, "a word splits a character")
            decoded += octets
        }
        #expect(String(decoding: decoded, as: UTF8.self) == name)
    }
}
