import MailCore
import NIOCore
import Testing

@testable import IMAPCore

/// BODY and BODYSTRUCTURE of messages whose every size and line count is known.
@Suite struct IMAPBodyStructureTests {
    static func encoded(_ message: String, extensible: Bool) -> String {
        var out = ByteBuffer()
        let part = MIMEPart(message: Array(message.utf8))
        IMAPResponseEncoder(utf8: false).writeBodyStructure(part, extensible: extensible, into: &out)
        return String(buffer: out)
    }

    static let mixed =
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=US-ASCII\r\n\r\nhello\r\nworld\r\n"
        + "--b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-ID: <id1@x>\r\nContent-Description: A file\r\n"
        + "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n"
        + "Content-Language: en, de\r\n\r\nJVBE\r\n--b--\r\n"

    @Test func aMixedMessage() {
        #expect(
            Self.encoded(Self.mixed, extensible: false)
                == "((\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 12 2)"
                + "(\"application\" \"pdf\" (\"name\" \"a.pdf\") \"<id1@x>\" \"A file\" \"BASE64\" 4) \"mixed\")"
        )
        #expect(
            Self.encoded(Self.mixed, extensible: true)
                == "((\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 12 2 NIL NIL NIL NIL)"
                + "(\"application\" \"pdf\" (\"name\" \"a.pdf\") \"<id1@x>\" \"A file\" \"BASE64\" 4 NIL "
                + "(\"attachment\" (\"filename\" \"a.pdf\")) (\"en\" \"de\") NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)"
        )
    }

    @Test func anAttachedMessage() {
        let message = "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n"
        #expect(
            Self.encoded(message, extensible: false)
                == "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 24 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
                + "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 6 1) 3)"
        )
    }

    @Test func aPlainMessageAndABrokenMultipart() {
        #expect(
            Self.encoded("Subject: x\r\n\r\none\r\ntwo", extensible: true)
                == "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 8 2 NIL NIL NIL NIL)"
        )
        // A boundary that never appears: one empty text part stands for the missing ones.
        #expect(
            Self.encoded("Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts\r\n", extensible: false)
                == "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0) \"mixed\")"
        )
    }

    /// Found in review: a message/rfc822 part with no message in it still has an envelope, a
    /// body and a line count, as the grammar needs.
    @Test func anEmptyAttachedMessage() {
        #expect(
            Self.encoded("Content-Type: message/rfc822\r\n\r\n", extensible: false)
                == "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
                + "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0) 0)"
        )
    }
}
