import Testing

@testable import IMAPCore

/// RFC 3501 §5.1.3's mailbox name encoding, both ways, with its own examples and malformed runs.
@Suite struct ModifiedUTF7Tests {
    @Test(arguments: [
        ("INBOX", "INBOX"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Résumé & CV", "R&AOk-sum&AOk- &- CV"),
        ("😀", "&2D3eAA-"),
        ("a\u{7F}b", "a&AH8-b"),
        ("", ""),
    ])
    func bothWays(name: String, encoded: String) {
        #expect(ModifiedUTF7.encode(name) == encoded)
        #expect(ModifiedUTF7.decode(Array(encoded.utf8)) == name)
    }

    @Test(arguments: [
        "&U,BTFw",  // unterminated
        "&U,BTF!-",  // not base64
        "&AGE-",  // printable ASCII ("a") must stand for itself
        "&U,BTFw-&ZeVnLIqe-",  // two runs in a row: one run was possible
        "&2D0-",  // a lone high surrogate
        "&U,BTFx-",  // stray bits at the end
        "&U-",  // a single sextet: no whole octet
        "a\u{1}b",  // a control character
        "Entwürfe",  // 8-bit octets
    ])
    func malformed(encoded: String) {
        #expect(ModifiedUTF7.decode(Array(encoded.utf8)) == nil)
    }

    /// Every name comes back as it went, whatever its characters.
    @Test func roundTrips() {
        var generator = SystemRandomNumberGenerator()
        let pool: [Unicode.Scalar] = ["a", "&", "-", "/", " ", "~", "ü", "台", "😀", "\u{7F}", "\u{2028}", "Z"]
        for _ in 0..<2_000 {
            var name = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0..<12, using: &generator) {
                name.append(pool.randomElement(using: &generator)!)
            }
            let text = String(name)
            #expect(ModifiedUTF7.decode(Array(ModifiedUTF7.encode(text).utf8)) == text, "\(text.debugDescription)")
        }
    }
}
