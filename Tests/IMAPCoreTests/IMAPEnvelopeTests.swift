import MailCore
import NIOCore
import Testing

@testable import IMAPCore

/// ENVELOPE as RFC 9051 §6.4.5's example writes it, and its rules for what is missing.
@Suite struct IMAPEnvelopeTests {
    static func encoded(_ header: String, utf8: Bool = false) -> String {
        var out = ByteBuffer()
        IMAPResponseEncoder(utf8: utf8).writeEnvelope(
            IMAPEnvelope(header: HeaderSection(parsing: Array(header.utf8))),
            into: &out
        )
        return String(buffer: out)
    }

    @Test func theRFCsExample() {
        let header = """
            Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r
            From: Terry Gray <gray@cac.washington.edu>\r
            Subject: IMAP4rev2 WG mtg summary and minutes\r
            To: imap@cac.washington.edu\r
            cc: minutes@CNRI.Reston.VA.US,\r
             John Klensin <KLENSIN@MIT.EDU>\r
            Message-Id: <B27397-0100000@cac.washington.edu>\r

            """
        let expected =
            "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" "
            + "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
            + "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) "
            + "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
            + "\"<B27397-0100000@cac.washington.edu>\")"
        #expect(Self.encoded(header) == expected)
    }

    @Test func groupsSendersAndWhatIsMissing() {
        let header =
            "From: a@b.example\r\nSender: s@b.example\r\nTo: team:x@b.example,y@b.example;\r\nBcc: undisclosed-recipients:;\r\n"
        #expect(
            Self.encoded(header)
                == "(NIL NIL ((NIL NIL \"a\" \"b.example\")) ((NIL NIL \"s\" \"b.example\")) ((NIL NIL \"a\" \"b.example\")) "
                + "((NIL NIL \"team\" NIL)(NIL NIL \"x\" \"b.example\")(NIL NIL \"y\" \"b.example\")(NIL NIL NIL NIL)) NIL "
                + "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL)"
        )
        #expect(Self.encoded("") == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
    }

    /// 8-bit text goes as a literal to a client without UTF-8, quoted to one with it; line
    /// ends inside a value are unfolded away, quotes escaped.
    @Test func eightBitAndHostileValues() {
        #expect(Self.encoded("Subject: Grüße\r\n").hasPrefix("(NIL {7}\r\nGrüße NIL"))
        #expect(Self.encoded("Subject: Grüße\r\n", utf8: true).hasPrefix("(NIL \"Grüße\" NIL"))
        #expect(Self.encoded("Subject: a\rb \"q\"\r\n").hasPrefix("(NIL \"ab \\\"q\\\"\" NIL"))
    }
}
