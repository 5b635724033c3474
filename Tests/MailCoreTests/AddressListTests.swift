import MailCore
import Testing

/// `AddressList`: From and Sender read one way only (`mailboxes`), recipient fields leniently
/// (`recipients`).
struct AddressListTests {
    @Test(arguments: [
        ("alice@example.com", ["alice@example.com"]),
        ("Alice <alice@example.com>", ["alice@example.com"]),
        ("\"Example, Alice\" <alice@example.com>", ["alice@example.com"]),
        ("\"ceo@example.com\" <alice@example.com>", ["alice@example.com"]),
        ("alice@example.com (Alice)", ["alice@example.com"]),
        ("Alice <alice@example.com> (work)", ["alice@example.com"]),
        ("(c) Alice <alice@example.com>", ["alice@example.com"]),
        ("a@example.com, Bob <b@example.org>", ["a@example.com", "b@example.org"]),
        ("a@example.com,, b@example.org", ["a@example.com", "b@example.org"]),
        ("\"a b\"@example.com", ["\"a b\"@example.com"]),
        ("J. R. <jr@example.com>", ["jr@example.com"]),
        ("<alice@example.com>", ["alice@example.com"]),
    ])
    func readsAMailboxList(_ value: String, _ expected: [String]) {
        #expect(AddressList.mailboxes(in: value) == expected, "\(value)")
    }

    /// Shapes where readers disagree on which address is meant: a second angle-addr, an address
    /// before the angle-addr, group syntax, text after the bracket, broken quoting. Before, the
    /// lenient reader took the last angle-addr (or what followed a colon), so a user could sign
    /// `<ceo@…> <alice@…>` as alice while a mail reader showed the CEO.
    @Test(arguments: [
        "<ceo@example.com> <alice@example.com>",
        "ceo@example.com <alice@example.com>",
        "ceo@example.com:alice@example.com;",
        "Friends: a@example.com, b@example.com;",
        "Alice <alice@example.com> ceo@example.com",
        "<@route.example:alice@example.com>",
        "a@example.com b@example.com",
        "Alice <alice@example.com",
        "\"Alice <alice@example.com>",
        "(Alice <alice@example.com>",
        "someone",
        "@example.com",
        "alice@",
    ])
    func refusesWhatCouldBeReadTwoWays(_ value: String) {
        #expect(AddressList.mailboxes(in: value) == nil, "\(value)")
    }

    /// The lenient reader, for recipient fields: groups are read through.
    @Test func recipientLists() {
        #expect(AddressList.recipients(in: "a@b.example") == ["a@b.example"])
        #expect(
            AddressList.recipients(in: "A <a@b.example>, \"C, D\" <c@d.example>") == ["a@b.example", "c@d.example"]
        )
        #expect(
            AddressList.recipients(in: "team: a@b.example, c@d.example;, e@f.example") == [
                "a@b.example", "c@d.example", "e@f.example",
            ]
        )
        #expect(AddressList.recipients(in: "a@b.example (Joe (the) \\) man)") == ["a@b.example"])
        #expect(AddressList.recipients(in: "\"unterminated <a@b.example>") == nil)
        #expect(AddressList.recipients(in: "Doe, John <j@x.example>") == nil)
        #expect(AddressList.domain(of: "joe@Bücher.Example") == "xn--bcher-kva.example")
        #expect(AddressList.domain(of: "joe@example..com") == nil)
    }
}
