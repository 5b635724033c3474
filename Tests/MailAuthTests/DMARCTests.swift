import DNSCore
import MailAuth
import MailCore
import PetrelTestSupport
import Testing

/// RFC 9989 behaviour the RFC 7489 cases cannot show: the Tree Walk, psd=, np=, t=, and the
/// From field in its odd shapes.
struct DMARCTests {
    static func verdict(
        _ zone: InMemoryZone,
        from: [String],
        spf: (String, SPFResult)? = nil,
        dkim: [(String, DKIMResult)] = []
    ) async -> DMARCVerdict {
        await DMARCVerifier(resolver: zone).evaluate(
            fromFields: from,
            identifiers: .init(
                spf: spf.map { (domain: $0.0, result: $0.1) },
                dkim: dkim.map { (domain: $0.0, result: $0.1) }
            )
        )
    }

    /// §4.10: at most eight queries, the second one jumping to seven labels.
    @Test func treeWalkQueries() async {
        let zone = InMemoryZone()
        let verdict = await Self.verdict(zone, from: ["x@a.b.c.d.e.f.g.h.i.j.mail.example.com"])
        #expect(verdict.result == .none)
        #expect(
            zone.questions.map { $0.name.description } == [
                "_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com.", "_dmarc.g.h.i.j.mail.example.com.",
                "_dmarc.h.i.j.mail.example.com.", "_dmarc.i.j.mail.example.com.", "_dmarc.j.mail.example.com.",
                "_dmarc.mail.example.com.", "_dmarc.example.com.", "_dmarc.com.",
            ]
        )
    }

    /// §4.10.2's examples: psd=n makes its domain the Organizational Domain; psd=y makes the
    /// name below it one; otherwise the record with the fewest labels.
    @Test func organizationalDomains() async {
        let zone = InMemoryZone()
        zone.addTXT("_dmarc.example.com", ["v=DMARC1; p=reject"])
        zone.addTXT("_dmarc.mail.example.com", ["v=DMARC1; p=reject"])
        // Relaxed: a.mail.example.com and other.example.com share example.com.
        let relaxed = await Self.verdict(zone, from: ["x@a.mail.example.com"], dkim: [("other.example.com", .pass)])
        #expect(relaxed.result == .pass && relaxed.policyRecord == "_dmarc.mail.example.com")
        // psd=n at mail.example.com: a subdomain of it and other.example.com no longer align.
        let split = InMemoryZone()
        split.addTXT("_dmarc.example.com", ["v=DMARC1; p=reject"])
        split.addTXT("_dmarc.mail.example.com", ["v=DMARC1; p=reject; psd=n"])
        let apart = await Self.verdict(split, from: ["x@a.mail.example.com"], dkim: [("other.example.com", .pass)])
        #expect(apart.result == .fail && apart.disposition == .reject)
        let inside = await Self.verdict(split, from: ["x@a.mail.example.com"], dkim: [("b.mail.example.com", .pass)])
        #expect(inside.result == .pass)
        // psd=y at a public suffix: its children are separate organizations, and its policy
        // covers those that publish none.
        let suffix = InMemoryZone()
        suffix.addTXT("_dmarc.suffix", ["v=DMARC1; p=quarantine; psd=y"])
        let strangers = await Self.verdict(suffix, from: ["x@bank.suffix"], spf: ("evil.suffix", .pass))
        #expect(strangers.result == .fail && strangers.disposition == .quarantine)
        #expect(strangers.policyRecord == "_dmarc.suffix")
        let family = await Self.verdict(suffix, from: ["x@bank.suffix"], spf: ("mail.bank.suffix", .pass))
        #expect(family.result == .pass)
    }

    @Test func subdomainNonexistentAndTestingPolicies() async {
        let zone = InMemoryZone()
        zone.addTXT("_dmarc.example.com", ["v=DMARC1; p=reject; sp=quarantine; np=reject"])
        zone.add("news.example.com", .a([192, 0, 2, 1]), type: .a)
        let existing = await Self.verdict(zone, from: ["x@news.example.com"])
        #expect(existing.policy == .quarantine && existing.disposition == .quarantine)
        let missing = await Self.verdict(zone, from: ["x@nowhere.example.com"])
        #expect(missing.policy == .reject && missing.disposition == .reject, "np= for a name that does not exist")

        let testing = InMemoryZone()
        testing.addTXT("_dmarc.example.com", ["v=DMARC1; p=reject; t=y"])
        let lenient = await Self.verdict(testing, from: ["x@example.com"])
        #expect(lenient.policy == .reject && lenient.testing && lenient.disposition == .quarantine)
    }

    @Test func strictAlignmentAndNullReversePath() async {
        let zone = InMemoryZone()
        zone.addTXT("_dmarc.example.com", ["v=DMARC1; p=reject; adkim=s; aspf=s"])
        #expect(await Self.verdict(zone, from: ["x@example.com"], dkim: [("mail.example.com", .pass)]).result == .fail)
        #expect(await Self.verdict(zone, from: ["x@example.com"], dkim: [("EXAMPLE.com", .pass)]).result == .pass)
        #expect(await Self.verdict(zone, from: ["x@example.com"], spf: ("example.com", .pass)).result == .pass)
        #expect(await Self.verdict(zone, from: ["x@example.com"], dkim: [("example.com", .fail)]).result == .fail)
        // No SPF identifier for <>: the HELO identity does not count (§4.4.2).
        #expect(await Self.verdict(zone, from: ["x@example.com"], spf: nil).result == .fail)
    }

    @Test func fromFieldShapes() async {
        let zone = InMemoryZone()
        zone.addTXT("_dmarc.example.com", ["v=DMARC1; p=reject"])
        let named = await Self.verdict(
            zone,
            from: ["\"Smith, Joe (CEO)\" <joe@example.com> (comment, with comma)"],
            spf: ("example.com", .pass)
        )
        #expect(named.result == .pass && named.authorDomains == ["example.com"])
        #expect(await Self.verdict(zone, from: []).result == .permerror)
        #expect(await Self.verdict(zone, from: ["undisclosed-recipients:;"]).result == .permerror)
        #expect(await Self.verdict(zone, from: ["joe@[192.0.2.1]"]).result == .permerror)
        #expect(await Self.verdict(zone, from: ["<joe@example.com"]).result == .permerror)
        let many = (1...6).map { "u@d\($0).example" }.joined(separator: ", ")
        let crowd = await Self.verdict(zone, from: [many])
        #expect(crowd.result == .permerror && crowd.disposition == .reject)
    }

    /// RFC 3492 §7.1 samples and everyday names.
    @Test func punycode() {
        #expect(IDNA.toASCII("bücher.example") == "xn--bcher-kva.example")
        #expect(IDNA.toASCII("MÜNCHEN.de") == "xn--mnchen-3ya.de")
        #expect(IDNA.toASCII("例え.jp") == "xn--r8jz45g.jp")
        #expect(IDNA.toASCII("他们为什么不说中文") == "xn--ihqwcrb4cv8a8dqg056pqjye")
        #expect(IDNA.toASCII("Example.COM") == "example.com")
    }

    @Test func records() {
        func record(_ text: String) -> DMARCRecord? { DMARCRecord(Array(text.utf8)) }
        #expect(record("v=DMARC1") != nil && record("v=DMARC1")?.policy == nil)
        #expect(record("v=dmarc1; p=reject") == nil, "v= is case-sensitive")
        #expect(record("p=reject; v=DMARC1") == nil)
        #expect(record("v=DMARC1; p=reject; pct=10; future=1")?.policy == .reject)
        #expect(record("v=DMARC1; p=bogus")?.policyInvalid == true)
        #expect(record("v=DMARC1; p=none; rua=mailto:a@example.com, https://r.example")?.aggregateReportURIs.count == 2)
    }

    /// RFC 9989 dropped pct= and names t=y as the analogue of pct=0: a legacy pct=0 is testing,
    /// any other pct is read as absent, and an explicit t= wins.
    @Test(arguments: [
        ("v=DMARC1; p=quarantine; pct=0", true),
        ("v=DMARC1; p=reject; pct=00", true),
        ("v=DMARC1; p=reject; pct=100", false),
        ("v=DMARC1; p=reject; pct=50", false),
        ("v=DMARC1; p=reject; pct=bogus", false),
        ("v=DMARC1; p=reject; pct=0; t=n", false),
        ("v=DMARC1; p=reject; t=y", true),
    ])
    func pctZeroIsTesting(_ text: String, _ testing: Bool) {
        #expect(DMARCRecord(Array(text.utf8))?.testing == testing, "\(text)")
    }
}
