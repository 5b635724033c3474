import MailCore
import Testing

@Suite struct AddressLiteralTests {
    @Test(arguments: [
        ("192.0.2.1", "[192.0.2.1]"),
        ("0.0.0.0", "[0.0.0.0]"),
        ("255.255.255.255", "[255.255.255.255]"),
        ("IPv6:::1", "[IPv6:::1]"),
        ("IPv6:::", "[IPv6:::]"),
        ("IPv6:2001:db8:0:0:1:0:0:1", "[IPv6:2001:db8::1:0:0:1]"),
        ("IPv6:2001:db8::", "[IPv6:2001:db8::]"),
        ("IPv6:1:2:3:4:5:6:7:8", "[IPv6:1:2:3:4:5:6:7:8]"),
        ("IPv6:1:0:3:4:5:6:7:8", "[IPv6:1:0:3:4:5:6:7:8]"),
        ("IPv6:::ffff:10.0.0.1", "[IPv6:::ffff:a00:1]"),
        ("IPv6:1:2:3:4:5:6:10.0.0.1", "[IPv6:1:2:3:4:5:6:a00:1]"),
        ("ipv6:::1", "[IPv6:::1]"),
        ("X-Tag:some-content", "[X-Tag:some-content]"),
    ])
    func valid(content: String, rendered: String) {
        #expect(AddressLiteral(bracketContent: content)?.description == rendered)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04a", "1..2.3", "1234.1.1.1",
        "IPv6:", "IPv6:1", "IPv6:1:2:3:4:5:6:7", "IPv6:1:2:3:4:5:6:7:8:9", "IPv6:1::2::3", "IPv6:12345::",
        "IPv6:g::1", "IPv6:1:2:3:4:5:6:7:10.0.0.1", "IPv6:::1.2.3", ":content", "tag-:x", "tag:", "tag:[x]",
    ])
    func invalid(content: String) {
        #expect(AddressLiteral(bracketContent: content) == nil)
    }
}
