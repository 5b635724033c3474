import Testing

@testable import MailCore

/// A message's MIME structure: where each part's header and body are, what its header says,
/// IMAP's part numbers, and the limits that keep any input cheap.
@Suite struct MIMEStructureTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func body(_ part: MIMEPart, of message: [UInt8]) -> String {
        String(decoding: message[part.bodyStart..<part.end], as: UTF8.self)
    }

    @Test func aPlainMessageIsOneTextPart() {
        let message = Self.bytes("Subject: hi\r\nFrom: a@b\r\n\r\nline one\r\nline two\r\n")
        let part = MIMEPart(message: message)
        #expect(part.start == 0 && part.bodyStart == 26 && part.end == message.count)
        #expect(part.contentType == .textPlain && part.transferEncoding == "7bit")
        #expect(part.lines == 2 && part.parts.isEmpty && part.header.fields.count == 2)
        #expect(part.part([1]) == part && part.part([2]) == nil)
    }

    static let nested = """
        From: a@b\r
        Content-Type: multipart/mixed; boundary="outer"\r
        \r
        preamble\r
        --outer\r
        Content-Type: multipart/alternative; boundary=inner\r
        \r
        --inner\r
        \r
        plain\r
        --inner\r
        Content-Type: text/html; charset=utf-8\r
        \r
        <p>html</p>\r
        --inner--\r
        \r
        --outer\r
        Content-Type: message/rfc822\r
        \r
        Subject: attached\r
        Content-Type: multipart/mixed; boundary=x\r
        \r
        --x\r
        \r
        attached text\r
        --x--\r
        --outer  \r
        Content-Type: application/pdf\r
        Content-Transfer-Encoding: BASE64\r
        \r
        JVBERi0=\r
        --outer--\r
        epilogue\r

        """

    @Test func partsAreFoundAndNumberedAsIMAPNumbersThem() throws {
        let message = Self.bytes(Self.nested)
        let root = MIMEPart(message: message)
        #expect(root.contentType.type == "multipart" && root.contentType.subtype == "mixed")
        #expect(root.parts.count == 3)
        let alternative = try #require(root.part([1]))
        #expect(alternative.contentType.subtype == "alternative" && alternative.parts.count == 2)
        #expect(Self.body(try #require(root.part([1, 1])), of: message) == "plain")
        let html = try #require(root.part([1, 2]))
        #expect(Self.body(html, of: message) == "<p>html</p>" && html.contentType.parameter("CHARSET") == "utf-8")
        // The message/rfc822 part: its parts are its message's.
        let attached = try #require(root.part([2]))
        #expect(attached.contentType.isMessage && attached.parts.count == 1)
        #expect(attached.parts[0].header.fields(named: "Subject").first?.value == "attached")
        #expect(Self.body(try #require(root.part([2, 1])), of: message) == "attached text")
        // Trailing white space after a boundary is allowed; the encoding is lower-cased.
        let pdf = try #require(root.part([3]))
        #expect(pdf.transferEncoding == "base64" && Self.body(pdf, of: message) == "JVBERi0=")
        #expect(root.part([4]) == nil && root.part([1, 3]) == nil && root.part([3, 2]) == nil)
    }

    @Test(
        arguments: [
            ("text/plain", "text", "plain", [MIMEParameter]()),
            ("TEXT/HTML; CHARSET=\"UTF-8\"", "text", "html", [MIMEParameter("charset", "UTF-8")]),
            (
                "multipart/mixed; (a comment) boundary=\"a b;c\" ; x=y", "multipart", "mixed",
                [MIMEParameter("boundary", "a b;c"), MIMEParameter("x", "y")]
            ),
            (
                "application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A", "application",
                "x-stuff",
                [MIMEParameter("title", "This is ***fun***")]
            ),
            (
                "message/external-body; URL*0=\"ftp://\"; URL*1=\"cs.utk.edu/pub\"", "message", "external-body",
                [MIMEParameter("url", "ftp://cs.utk.edu/pub")]
            ),
            (
                "application/octet-stream; name*0*=utf-8''%C3%A4; name*1=.txt", "application", "octet-stream",
                [MIMEParameter("name", "ä.txt")]
            ),
            ("text/plain; charset=a; charset=b", "text", "plain", [MIMEParameter("charset", "a")]),
            (
                "application/pdf; filename*=iso-8859-1''%E9t%E9.pdf", "application", "pdf",
                [MIMEParameter("filename", "été.pdf")]
            ),
            ("text/plain; charset", "text", "plain", []),
        ] as [(String, String, String, [MIMEParameter])]
    )
    func contentTypes(value: String, type: String, subtype: String, parameters: [MIMEParameter]) throws {
        let parsed = try #require(MIMEContentType(parsing: value))
        #expect(parsed.type == type && parsed.subtype == subtype && parsed.parameters == parameters)
    }

    @Test(arguments: ["", "text", "/plain", "text/", "(x)"])
    func notContentTypes(value: String) {
        #expect(MIMEContentType(parsing: value) == nil)
    }

    /// A multipart whose boundary is missing is a leaf; one never closed runs to the end; a
    /// digest's parts are messages.
    @Test func brokenMultipartsStillHaveAStructure() throws {
        let noBoundary = MIMEPart(message: Self.bytes("Content-Type: multipart/mixed\r\n\r\n--x\r\nhi\r\n"))
        #expect(noBoundary.parts.isEmpty)
        let unclosed = Self.bytes(
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n"
        )
        let root = MIMEPart(message: unclosed)
        #expect(root.parts.count == 2 && Self.body(root.parts[1], of: unclosed) == "two\r\n")
        let digest = MIMEPart(
            message: Self.bytes(
                "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: s\r\n\r\nb\r\n--d--\r\n"
            )
        )
        #expect(digest.parts.first?.contentType == .messageRFC822 && digest.parts.first?.parts.count == 1)
        let headerOnly = MIMEPart(message: Self.bytes("Subject: no body"))
        #expect(headerOnly.bodyStart == headerOnly.end && headerOnly.lines == 0)
    }

    /// Nesting and part counts are bounded: no stack overflow, no blow-up.
    @Test func depthAndPartsAreBounded() {
        var deep = ""
        for level in 0..<5_000 { deep += "Content-Type: multipart/mixed; boundary=b\(level)\r\n\r\n--b\(level)\r\n" }
        let root = MIMEPart(message: Self.bytes(deep))
        var depth = 0
        var part = root
        while let child = part.parts.first {
            depth += 1
            part = child
        }
        #expect(depth == MIMEPart.maximumDepth)
        var wide = "Content-Type: multipart/mixed; boundary=w\r\n\r\n"
        for _ in 0..<5_000 { wide += "--w\r\n\r\nx\r\n" }
        func count(_ part: MIMEPart) -> Int { 1 + part.parts.map(count).reduce(0, +) }
        #expect(count(MIMEPart(message: Self.bytes(wide))) <= MIMEPart.maximumParts)
    }

    /// Any octets give a structure, its offsets inside the message and in order.
    @Test func randomInputGivesASaneStructure() {
        var generator = SystemRandomNumberGenerator()
        let pieces = [
            "Content-Type: multipart/mixed; boundary=q\r\n", "--q\r\n", "--q--\r\n", "\r\n", "x", "\n",
            "Content-Type: message/rfc822\r\n", ":", "\r",
        ]
        for _ in 0..<2_000 {
            let text = (0..<Int.random(in: 0..<30, using: &generator)).map { _ in
                pieces.randomElement(using: &generator)!
            }.joined()
            let message = Self.bytes(text)
            func check(_ part: MIMEPart, within range: Range<Int>) {
                #expect(range.lowerBound <= part.start && part.start <= part.bodyStart && part.bodyStart <= part.end)
                #expect(part.end <= range.upperBound)
                for child in part.parts { check(child, within: part.bodyStart..<max(part.bodyStart, part.end)) }
            }
            check(MIMEPart(message: message), within: 0..<message.count)
        }
    }

    /// Found in review: a part whose header never ends is no header at all past 256 KiB (not
    /// millions of fields kept), and only the fields the structure needs are kept.
    @Test func headersAreBoundedAndOnlyUsefulFieldsKept() {
        let endless =
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + String(repeating: "x:\r\n", count: 100_000)
        let root = MIMEPart(message: Self.bytes(endless))
        #expect(root.parts.count == 1 && root.parts[0].header.fields.isEmpty)
        #expect(root.parts[0].bodyStart == root.parts[0].start && root.parts[0].contentType == .textPlain)
        let many = "Subject: s\r\nX-A: 1\r\nContent-Type: text/html\r\nReceived: r\r\n\r\nbody"
        #expect(MIMEPart(message: Self.bytes(many)).header.fields.map(\.name) == ["Subject", "Content-Type"])
    }

    /// Found in review: a message that is itself message/rfc822 numbers its parts as IMAP does:
    /// BODY[1] is the attached message, BODY[1.1] its first part.
    @Test func aTopLevelAttachedMessageIsPartOne() throws {
        let message = Self.bytes(
            "Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nfirst\r\n--q--\r\n"
        )
        let root = MIMEPart(message: message)
        let one = try #require(root.part([1]))
        #expect(one == root)
        #expect(Self.body(try #require(root.part([1, 1])), of: message) == "first")
    }
}
