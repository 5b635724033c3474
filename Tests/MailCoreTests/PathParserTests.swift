import MailCore
import Testing

@Suite struct PathParserTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let input: String
        /// The mailbox as rendered, "<>" for the null path, nil for a syntax error.
        let expected: String?
        var testDescription: String { self.input }
    }

    static let reversePaths: [Case] = [
        Case(input: "<>", expected: "<>"),
        Case(input: "<alice@example.com>", expected: "<alice@example.com>"),
        Case(input: "<Alice.Smith@Example.COM>", expected: "<Alice.Smith@Example.COM>"),
        Case(input: "<\"john smith\"@example.com>", expected: "<\"john smith\"@example.com>"),
        // A quoted string that could be a dot-string is rendered as one (RFC 5321 4.1.2).
        Case(input: "<\"john\"@example.com>", expected: "<john@example.com>"),
        Case(input: "<\"a\\\"b\"@example.com>", expected: "<\"a\\\"b\"@example.com>"),
        Case(input: "<user@[192.0.2.1]>", expected: "<user@[192.0.2.1]>"),
        Case(input: "<user@[IPv6:2001:db8::1]>", expected: "<user@[IPv6:2001:db8::1]>"),
        Case(input: "<user@[IPv6:2001:DB8:0:0:0:0:0:1]>", expected: "<user@[IPv6:2001:db8::1]>"),
        Case(input: "<user@[IPv6:::ffff:192.0.2.1]>", expected: "<user@[IPv6:::ffff:c000:201]>"),
        Case(input: "<@relay.example,@other.example:user@example.com>", expected: "<user@example.com>"),
        Case(input: "<victim%foreign.example@example.com>", expected: "<victim%foreign.example@example.com>"),
        Case(input: "<foreign.example!victim@example.com>", expected: "<foreign.example!victim@example.com>"),
        Case(input: "<j\u{f6}s\u{e9}@example.com>", expected: "<j\u{f6}s\u{e9}@example.com>"),
        Case(input: "<user@b\u{fc}cher.example>", expected: "<user@b\u{fc}cher.example>"),
        Case(
            input: "<\(String(repeating: "l", count: 64))@example.com>",
            expected: "<\(String(repeating: "l", count: 64))@example.com>"
        ),
        // Refused
        Case(input: "alice@example.com", expected: nil),
        Case(input: "<alice@example.com", expected: nil),
        Case(input: "<user@@example.com>", expected: nil),
        Case(input: "<@example.com>", expected: nil),
        Case(input: "<user@>", expected: nil),
        Case(input: "<user>", expected: nil),
        Case(input: "<.user@example.com>", expected: nil),
        Case(input: "<user.@example.com>", expected: nil),
        Case(input: "<us..er@example.com>", expected: nil),
        Case(input: "<john smith@example.com>", expected: nil),
        Case(input: "<us\u{01}er@example.com>", expected: nil),
        Case(input: "<user@[300.1.1.1]>", expected: nil),
        Case(input: "<user@[1.2.3]>", expected: nil),
        Case(input: "<user@[IPv6:zz::1]>", expected: nil),
        Case(input: "<user@[IPv6:1::2::3]>", expected: nil),
        Case(input: "<user@[IPv6:1:2:3:4:5:6:7:8:9]>", expected: nil),
        Case(input: "<user@[192.0.2.1>", expected: nil),
        Case(input: "<user@-bad.example>", expected: nil),
        Case(input: "<user@bad-.example>", expected: nil),
        Case(input: "<user@example..com>", expected: nil),
        Case(input: "<user@example.com.>", expected: nil),
        Case(input: "<user@exa_mple.com>", expected: nil),
        Case(input: "<user@\(String(repeating: "a", count: 64)).com>", expected: nil),
        Case(input: "<\"unterminated@example.com>", expected: nil),
        Case(input: "<\"bad\u{01}\"@example.com>", expected: nil),
        Case(input: "<@relay.example:>", expected: nil),
        Case(input: "<@:user@example.com>", expected: nil),
        Case(input: "< user@example.com>", expected: nil),
    ]

    @Test(arguments: reversePaths)
    func reversePath(_ testCase: Case) {
        var parser = PathParser(bytes: Array(testCase.input.utf8))
        let result = try? parser.parseReversePath()
        if let expected = testCase.expected {
            #expect(result?.description == expected)
            #expect(parser.atEnd)
        } else {
            #expect(result == nil || !parser.atEnd, "accepted \(String(describing: result))")
        }
    }

    @Test(arguments: [
        ("<postmaster>", "<postmaster>"),
        ("<PostMaster>", "<postmaster>"),
        ("<postmaster@example.com>", "<postmaster@example.com>"),
        ("<alice@example.com>", "<alice@example.com>"),
    ])
    func forwardPath(input: String, expected: String) throws {
        var parser = PathParser(bytes: Array(input.utf8))
        #expect(try parser.parseForwardPath().description == expected)
    }

    @Test(arguments: ["<>", "<victim%foreign.example>", "<\"victim@foreign.example\">", "<postmaster", "<postmasterx>"])
    func forwardPathRefused(input: String) {
        var parser = PathParser(bytes: Array(input.utf8))
        let result = try? parser.parseForwardPath()
        #expect(result == nil || !parser.atEnd)
    }

    @Test func quotedAtStaysInLocalPart() throws {
        var parser = PathParser(bytes: Array("<\"victim@foreign.example\"@example.com>".utf8))
        let path = try parser.parseForwardPath()
        guard case .mailbox(let mailbox) = path else {
            Issue.record("expected a mailbox")
            return
        }
        #expect(mailbox.localPart == "victim@foreign.example")
        #expect(mailbox.domain?.canonical == "example.com")
    }

    @Test func domainsCompareCaseInsensitively() {
        #expect(Domain("Example.COM") == Domain("example.com"))
        #expect(Domain("Example.COM")?.canonical == "example.com")
        #expect(Mailbox("a@Example.com") == Mailbox("a@example.COM"))
        #expect(Mailbox("A@example.com") != Mailbox("a@example.com"))
    }

    @Test func asciiDetection() {
        #expect(Mailbox("alice@example.com")?.isASCII == true)
        #expect(Mailbox("j\u{f6}s@example.com")?.isASCII == false)
        #expect(Mailbox("jos@b\u{fc}cher.example")?.isASCII == false)
        #expect(ReversePath.null.isASCII)
    }
}
