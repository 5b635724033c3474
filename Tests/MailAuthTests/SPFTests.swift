import DNSCore
import MailAuth
import MailCore
import PetrelTestSupport
import Testing

/// SPF beyond the suite: record syntax (hostile shapes included), the macro examples of RFC 7208
/// §7.4, and the reasons given with results.
struct SPFTests {
    @Test(arguments: [
        ("v=spf1", true),
        ("v=spf1 -all", true),
        ("V=SPF1 +A/24//64 MX:example.com ~all", true),
        ("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", true),
        ("v=spf1 include:_spf.%{d2} exists:%{ir}.%{v}.x.example.com ?all", true),
        ("v=spf1 foo=bar.example exp=explain.%{d}", true),
        ("v=spf1 a:example.com/33", false),
        ("v=spf1 a:example.com/024", false),
        ("v=spf1 ip6:2001:db8::/129", false),
        ("v=spf1 ip4:192.0.2.300", false),
        ("v=spf1 ip4:2001:db8::1", false),
        ("v=spf1 ip6:192.0.2.1", false),
        ("v=spf1 redirect=a.example redirect=b.example", false),
        ("v=spf1 exp=a.example exp=b.example", false),
        ("v=spf1 include:%{z}.example.com", false),
        ("v=spf1 include:%{d0}.example.com", false),
        ("v=spf1 include:%{d", false),
        ("v=spf1 exists:%x.example.com", false),
        ("v=spf1 a:example", false),
        ("v=spf1 a:example.123", false),
        ("v=spf1 a:%{r}.example.com", false),
        ("v=spf1 all:foo", false),
        ("v=spf1 -all\u{7F}", false),
        ("v=spf1 =nothing", false),
        ("v=spf1 mechanism", false),
        ("v=spf1 " + String(repeating: "%{d}", count: 5000), false),
    ])
    func recordSyntax(_ text: String, _ valid: Bool) {
        let parsed = (try? SPFRecord(parsing: Array(text.utf8))) != nil
        #expect(parsed == valid, "\(text.prefix(60))")
    }

    @Test func versionMustStandAlone() {
        #expect(SPFRecord.isSPF(Array("v=spf1".utf8)))
        #expect(SPFRecord.isSPF(Array("V=Spf1 -all".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf10 -all".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf1-all".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf".utf8)))
    }

    /// RFC 7208 §7.4: sender strong-bad@email.example.com from 192.0.2.3 or 2001:db8::cb01.
    @Test(arguments: [
        ("%{s}", "192.0.2.3", "strong-bad@email.example.com"),
        ("%{o}", "192.0.2.3", "email.example.com"),
        ("%{d2}", "192.0.2.3", "example.com"),
        ("%{d1}", "192.0.2.3", "com"),
        ("%{dr}", "192.0.2.3", "com.example.email"),
        ("%{d2r}", "192.0.2.3", "example.email"),
        ("%{l-}", "192.0.2.3", "strong.bad"),
        ("%{lr-}", "192.0.2.3", "bad.strong"),
        ("%{l1r-}", "192.0.2.3", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "192.0.2.3", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "192.0.2.3", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "192.0.2.3", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "192.0.2.3", "example.com.trusted-domains.example.net"),
        (
            "%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01",
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        ),
        ("%{L}.x.example.com", "192.0.2.3", "strong-bad.x.example.com"),
        ("%{S}.x.example.com", "192.0.2.3", "strong-bad%40email.example.com.x.example.com"),
    ])
    func macroExamples(_ spec: String, _ client: String, _ expected: String) async throws {
        let zone = InMemoryZone()
        zone.addTXT("email.example.com", ["v=spf1 exists:\(spec) -all"])
        let verdict = await SPFVerifier(resolver: zone).check(
            ip: try #require(IPAddress(client)),
            mailFrom: "strong-bad@email.example.com",
            helo: "mx.example.org"
        )
        #expect(verdict.result == .fail)
        #expect(zone.questions.last?.name == DNSName(expected), "asked \(zone.questions.map(\.name))")
    }

    @Test func resultsSayWhy() async throws {
        let zone = InMemoryZone()
        zone.addTXT("example.com", ["v=spf1 ip4:192.0.2.0/24 include:other.example -all"])
        zone.addTXT("other.example", ["v=spf1 a -all"])
        zone.add("other.example", .a([198, 51, 100, 7]), type: .a)
        zone.addTimeout("slow.example")
        let verifier = SPFVerifier(resolver: zone)
        let pass = await verifier.check(ip: IPAddress("192.0.2.9")!, mailFrom: "a@example.com", helo: "h.example")
        #expect(pass.result == .pass && pass.reason == "ip4:192.0.2.0/24 matched in the record of example.com")
        let included = await verifier.check(ip: IPAddress("198.51.100.7")!, mailFrom: "a@example.com", helo: "h")
        #expect(included.result == .pass && included.reason.hasPrefix("include:other.example matched"))
        let fail = await verifier.check(ip: IPAddress("203.0.113.1")!, mailFrom: "a@example.com", helo: "h")
        #expect(fail.result == .fail && fail.reason.hasPrefix("-all matched"))
        // An IPv4 client seen through a dual-stack socket is still IPv4.
        let mapped = await verifier.check(ip: IPAddress("::ffff:192.0.2.9")!, mailFrom: "a@example.com", helo: "h")
        #expect(mapped.result == .pass)
        let slow = await verifier.check(ip: IPAddress("192.0.2.9")!, mailFrom: "a@slow.example", helo: "h")
        #expect(slow.result == .temperror && slow.reason.contains("timeout"))
        // <> is checked as postmaster@ the HELO name.
        let bounce = await verifier.check(ip: IPAddress("192.0.2.9")!, mailFrom: "", helo: "example.com")
        #expect(bounce.result == .pass && bounce.sender == "postmaster@example.com")
    }

    @Test func internationalizedDomainsAreLookedUpByTheirALabels() async throws {
        let zone = InMemoryZone()
        zone.addTXT("xn--bcher-kva.example", ["v=spf1 ip4:192.0.2.0/24 -all"])
        let verdict = await SPFVerifier(resolver: zone).check(
            ip: IPAddress("192.0.2.1")!,
            mailFrom: "jörg@bücher.example",
            helo: "h.example"
        )
        #expect(verdict.result == .pass, "\(verdict.reason)")
    }

    /// Every include costs a query; the eleventh is a permerror whatever it would have matched.
    @Test func dnsTermLimit() async throws {
        let zone = InMemoryZone()
        let includes = (1...11).map { "include:i\($0).example" }.joined(separator: " ")
        zone.addTXT("example.com", ["v=spf1 \(includes) -all"])
        for index in 1...11 { zone.addTXT("i\(index).example", ["v=spf1 -all"]) }
        let verdict = await SPFVerifier(resolver: zone).check(
            ip: IPAddress("192.0.2.1")!,
            mailFrom: "a@example.com",
            helo: "h"
        )
        #expect(verdict.result == .permerror)
        #expect(zone.questions.count == 11, "the record and ten includes, not the eleventh")
    }

    @Test func ipAddresses() {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("2001:DB8:0:0::1")?.description == "2001:db8::1")
        #expect(IPAddress("::ffff:192.0.2.1")?.unmapped.description == "192.0.2.1")
        #expect(IPAddress("192.0.2.1")!.isIn(IPAddress("192.0.2.128")!, prefixLength: 24))
        #expect(!IPAddress("192.0.3.1")!.isIn(IPAddress("192.0.2.0")!, prefixLength: 24))
        #expect(IPAddress("192.0.3.1")!.isIn(IPAddress("10.0.0.0")!, prefixLength: 0))
        #expect(!IPAddress("192.0.2.1")!.isIn(IPAddress("::")!, prefixLength: 0), "families never mix")
        #expect(IPAddress("2001:db8::1")!.isIn(IPAddress("2001:db8:ffff::")!, prefixLength: 32))
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1::2::3", "12345::", "::g"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }
}
