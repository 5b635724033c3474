import MailCore
import Testing

/// PREVIEW's text (RFC 8970): the first plain text part (else HTML as text), quotes and
/// attachments left out, whitespace made single, at most 256 characters.
@Suite struct MessagePreviewTests {
    static func preview(_ text: String) -> String {
        let bytes = Array(text.utf8)
        return MessagePreview.make(message: bytes, structure: MIMEPart(message: bytes))
    }

    @Test(
        arguments: [
            ("Subject: a\r\n\r\nHello   there,\r\n\r\n  how are you?\r\n", "Hello there, how are you?"),
            ("Subject: a\r\n\r\nI agree.\r\n> You wrote this\r\n>> and that\r\nThanks\r\n", "I agree. Thanks"),
            (
                "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                    + "Gr=FC=DFe aus K=F6ln\r\n",
                "Grüße aus Köln"
            ),
            (
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
                    + "Content-Disposition: attachment; filename=a.txt\r\n\r\nnot this\r\n--b\r\n"
                    + "Content-Type: text/html\r\n\r\n<html><style>p{}</style><p>Hi &amp; <b>welcome</b></p></html>\r\n--b--\r\n",
                "Hi & welcome"
            ),
            (
                "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain one\r\n"
                    + "--b\r\nContent-Type: text/html\r\n\r\n<p>html one</p>\r\n--b--\r\n",
                "plain one"
            ),
            ("Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n", ""),
        ] as [(String, String)]
    )
    func previews(message: String, expected: String) {
        #expect(Self.preview(message) == expected)
    }

    @Test func longTextIsCutAtAWordWithinTheLimit() {
        let words = Array(repeating: "abcdefghi", count: 100).joined(separator: " ")
        let preview = Self.preview("Subject: a\r\n\r\n" + words + "\r\n")
        #expect(preview.count <= MessagePreview.maximumLength && preview.count > 240)
        #expect(preview.hasSuffix("abcdefghi"))
        let word = Self.preview("Subject: a\r\n\r\n" + String(repeating: "x", count: 1000) + "\r\n")
        #expect(word.count == MessagePreview.maximumLength)
    }
}
