import Testing

@testable import MailCore

/// Addresses as mail readers read them, RFC 5322 appendix A's examples among them.
@Suite struct HeaderAddressTests {
    static func box(_ name: String?, _ local: String, _ domain: String?, route: String? = nil) -> HeaderMailbox {
        HeaderMailbox(name: name, route: route, localPart: local, domain: domain)
    }

    @Test(
        arguments: [
            ("Alice <a@b.example>", [HeaderAddress.mailbox(Self.box("Alice", "a", "b.example"))]),
            (
                "\"Smith, John\" <j@x.example>, k@y.example",
                [.mailbox(Self.box("Smith, John", "j", "x.example")), .mailbox(Self.box(nil, "k", "y.example"))]
            ),
            ("John Q. Public <JQB@bar.example>", [.mailbox(Self.box("John Q. Public", "JQB", "bar.example"))]),
            ("a@b.example (a comment)", [.mailbox(Self.box(nil, "a", "b.example"))]),
            ("undisclosed-recipients:;", [.group(name: "undisclosed-recipients", members: [])]),
            (
                "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Mary <mary@x.test>",
                [
                    .group(
                        name: "A Group",
                        members: [
                            Self.box("Ed Jones", "c", "a.test"), Self.box(nil, "joe", "where.test"),
                            Self.box("John", "jdoe", "one.test"),
                        ]
                    ),
                    .mailbox(Self.box("Mary", "mary", "x.test")),
                ]
            ),
            (
                "<@route1.example,@route2.example:jdoe@machine.example>",
                [.mailbox(Self.box(nil, "jdoe", "machine.example", route: "@route1.example,@route2.example"))]
            ),
            (
                "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
                [.mailbox(Self.box("Pete", "pete", "silly.test"))]
            ),
            ("=?utf-8?q?J=C3=B6rg?= <j@x.example>", [.mailbox(Self.box("=?utf-8?q?J=C3=B6rg?=", "j", "x.example"))]),
            ("jdoe@[192.0.2.1]", [.mailbox(Self.box(nil, "jdoe", "[192.0.2.1]"))]),
            ("Jörg <jörg@bücher.example>", [.mailbox(Self.box("Jörg", "jörg", "bücher.example"))]),
            ("undisclosed", [.mailbox(Self.box(nil, "undisclosed", nil))]),
            (
                "a@b.example,\r\n c@d.example",
                [.mailbox(Self.box(nil, "a", "b.example")), .mailbox(Self.box(nil, "c", "d.example"))]
            ),
            ("", []),
            (",,, ,", []),
            ("<<>> @@, ok@fine.example", [.mailbox(Self.box(nil, "ok", "fine.example"))]),
        ] as [(String, [HeaderAddress])]
    )
    func addresses(value: String, expected: [HeaderAddress]) {
        #expect(HeaderAddress.parse(Array(value.utf8)) == expected)
    }

    /// Bounded: a field of a hundred thousand addresses gives at most the maximum, quickly.
    @Test func manyAddressesAreBounded() {
        let value = Array(String(repeating: "a@b.example,", count: 100_000).utf8)
        #expect(HeaderAddress.parse(value).count == HeaderAddress.maximumAddresses)
        let group = Array(("g:" + String(repeating: "a@b.example,", count: 100_000) + ";").utf8)
        if case .group(_, let members) = HeaderAddress.parse(group).first {
            #expect(members.count == HeaderAddress.maximumAddresses)
        } else {
            Issue.record("no group")
        }
    }

    /// Any octets give addresses without trapping.
    @Test func randomInputNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab@.<>,:;()\"\\[] \r\n\u{0}é".utf8)
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in
                alphabet.randomElement(using: &generator)!
            }
            _ = HeaderAddress.parse(bytes)
        }
    }
}
