import Foundation
import MailCore
import Testing

/// Addresses as the queue files keep them: the text of the address, read back by the RCPT TO
/// parser; the null path as "".
struct AddressCodingTests {
    struct Holder: Codable, Equatable {
        var sender: ReversePath
        var recipients: [Mailbox]
    }

    static func decode(_ json: String) throws -> Holder {
        try JSONDecoder().decode(Holder.self, from: Data(json.utf8))
    }

    @Test(arguments: [
        "alice@example.test", "\"john smith\"@example.test", "bob@[192.0.2.1]", "bob@[IPv6:2001:db8::1]",
        "jörg@bücher.example", "a.b+tag@sub.example.test",
    ])
    func mailboxesSurviveTheRoundTrip(_ text: String) throws {
        let mailbox = try #require(Mailbox(text))
        let holder = Holder(sender: .mailbox(mailbox), recipients: [mailbox])
        let json = String(decoding: try JSONEncoder().encode(holder), as: UTF8.self)
        #expect(try Self.decode(json) == holder)
    }

    @Test func theNullPathIsEmptyText() throws {
        let json = String(decoding: try JSONEncoder().encode(Holder(sender: .null, recipients: [])), as: UTF8.self)
        #expect(json.contains(#""sender":"""#))
        #expect(try Self.decode(json).sender == .null)
    }

    @Test(arguments: [
        #"{"sender":"<alice@example.test>","recipients":[]}"#,
        #"{"sender":"","recipients":["no at sign"]}"#,
        #"{"sender":"","recipients":["a@b@c"]}"#,
        #"{"sender":"","recipients":[""]}"#,
        #"{"sender":"","recipients":[7]}"#,
    ])
    func anythingElseIsRefused(_ json: String) {
        #expect(throws: DecodingError.self) { try Self.decode(json) }
    }
}
