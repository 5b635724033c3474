import Testing

@testable import MailStore

/// File names as maildir(5), Dovecot and mutt write them, and the odd ones other programs leave.
@Suite struct MaildirFileNameTests {
    @Test(
        arguments: [
            ("1700000000.M1P2.host:2,S", "1700000000.M1P2.host", ["\\Seen"], ["S"]),
            (
                "1700000000.M1P2.host:2,FRST", "1700000000.M1P2.host",
                ["\\Flagged", "\\Answered", "\\Seen", "\\Deleted"], ["F", "R", "S", "T"]
            ),
            ("1700000000.M1P2.host:2,", "1700000000.M1P2.host", [], []),
            ("1700000000.M1P2.host", "1700000000.M1P2.host", [], []),
            // Dovecot's keyword letters and P are kept, not read as flags; letters come sorted, once.
            ("b:2,aSPSb", "b", ["\\Seen"], ["P", "S", "a", "b"]),
            // Experimental semantics: the base ends at the colon, no flags.
            ("b:1,S", "b", [], []),
            // The first ":2," ends the base, whatever colon came before it.
            ("b:1,x:2,F", "b:1,x", ["\\Flagged"], ["F"]),
            ("b:2", "b", [], []),
            ("b:", "b", [], []),
            (":2,S", "", ["\\Seen"], ["S"]),
            ("b\u{e9}:2,D", "b\u{e9}", ["\\Draft"], ["D"]),
        ] as [(String, String, [String], [Character])]
    )
    func namesSplitIntoBaseAndFlags(name: String, base: String, flags: [String], letters: [Character]) {
        let parsed = MaildirFileName(name)
        #expect(parsed.base == base)
        #expect(parsed.flags == flags)
        #expect(parsed.letters == letters)
        #expect(MaildirFileName.split(name).base == base)
    }

    @Test func aRenameKeepsOtherProgramsLetters() {
        let name = MaildirFileName("b:2,PSa").with(flags: ["\\Flagged"])
        #expect(name.name == "b:2,FPa")
    }
}
