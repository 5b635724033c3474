import MailCore
import Testing

@testable import IMAPCore

/// What BODY[section]<partial> returns, part by part (RFC 9051 §6.4.5's own example layout).
@Suite struct IMAPSectionContentTests {
    static let message =
        "From: a@b.example\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + "--b\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
        + "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nX-Tag: t\r\n\r\ninner body\r\n"
        + "--b--\r\n"

    static func content(_ section: IMAPSection, _ message: String = Self.message) -> String? {
        let bytes = Array(message.utf8)
        return section.content(of: bytes, structure: MIMEPart(message: bytes)).map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    @Test(
        arguments: [
            (IMAPSection(), Self.message),
            (
                IMAPSection(text: .header),
                "From: a@b.example\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            ),
            (IMAPSection(text: .headerFields(["subject", "X-None"])), "Subject: outer\r\n\r\n"),
            (IMAPSection(text: .headerFieldsNot(["Content-Type", "From"])), "Subject: outer\r\n\r\n"),
            (IMAPSection(part: [1]), "part one"),
            (IMAPSection(part: [1], text: .mime), "Content-Type: text/plain\r\n\r\n"),
            // The line end before a boundary is the boundary's.
            (IMAPSection(part: [2]), "Subject: inner\r\nX-Tag: t\r\n\r\ninner body"),
            (IMAPSection(part: [2], text: .header), "Subject: inner\r\nX-Tag: t\r\n\r\n"),
            (IMAPSection(part: [2], text: .headerFields(["x-tag"])), "X-Tag: t\r\n\r\n"),
            (IMAPSection(part: [2], text: .text), "inner body"),
            (IMAPSection(part: [2, 1]), "inner body"),
        ] as [(IMAPSection, String)]
    )
    func sections(section: IMAPSection, expected: String) {
        #expect(Self.content(section) == expected)
    }

    /// No such part, or HEADER/TEXT of a part that is not a message: NIL.
    @Test(arguments: [
        IMAPSection(part: [3]), IMAPSection(part: [1, 2]), IMAPSection(part: [1], text: .header),
        IMAPSection(part: [1], text: .text), IMAPSection(part: [0]),
    ])
    func missing(section: IMAPSection) {
        #expect(Self.content(section) == nil)
    }

    /// A message that is not multipart: BODY[1] is its body, BODY[1.1] is not there.
    @Test func aSinglePartMessage() {
        let message = "Subject: s\r\n\r\nbody\r\n"
        #expect(Self.content(IMAPSection(part: [1]), message) == "body\r\n")
        #expect(Self.content(IMAPSection(part: [1, 1]), message) == "body\r\n")
        #expect(Self.content(IMAPSection(part: [2]), message) == nil)
    }

    @Test(
        arguments: [
            (0, 4, "0123"), (8, 5, "89"), (10, 1, ""), (99, 1, ""), (3, 1, "3"),
        ] as [(UInt64, UInt64, String)]
    )
    func partials(offset: UInt64, length: UInt64, expected: String) {
        let slice = IMAPPartial(offset: offset, length: length).apply(to: Array("xx0123456789".utf8)[2...])
        #expect(String(decoding: slice, as: UTF8.self) == expected)
    }
}
