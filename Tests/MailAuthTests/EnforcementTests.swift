import MailAuth
import Testing

/// The receiver's rules after SPF, DKIM and DMARC, one row per combination that matters.
@Suite struct EnforcementTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var spf: SPFResult? = nil
        var spfDomain = "example.com"
        var dkim: [(DKIMResult, String)] = []
        var dmarc: DMARCResult
        var policy: DMARCPolicy? = nil
        var testing = false
        var disposition: DMARCDisposition = .none
        var settings = Enforcement.Policy()
        var expected: Enforcement.Decision

        var testDescription: String { self.name }
    }

    static let rows: [Row] = [
        Row(name: "pass delivers", dmarc: .pass, policy: .reject, expected: .deliver),
        Row(name: "no DMARC, SPF pass", spf: .pass, dmarc: .none, expected: .deliver),
        Row(
            name: "fail under p=reject is refused",
            dmarc: .fail,
            policy: .reject,
            disposition: .reject,
            expected: .rejectDMARCFailure(domain: "example.com")
        ),
        Row(
            name: "fail under p=reject, operator quarantines",
            dmarc: .fail,
            policy: .reject,
            disposition: .reject,
            settings: .init(dmarcReject: .quarantine),
            expected: .quarantine
        ),
        Row(
            name: "fail under p=reject, operator only records",
            dmarc: .fail,
            policy: .reject,
            disposition: .reject,
            settings: .init(dmarcReject: .none),
            expected: .deliver
        ),
        Row(
            name: "fail under p=quarantine goes to junk",
            dmarc: .fail,
            policy: .quarantine,
            disposition: .quarantine,
            expected: .quarantine
        ),
        Row(
            name: "fail under p=quarantine, operator only records",
            dmarc: .fail,
            policy: .quarantine,
            disposition: .quarantine,
            settings: .init(dmarcQuarantine: .none),
            expected: .deliver
        ),
        Row(name: "fail under p=none delivers", dmarc: .fail, policy: .none, disposition: .none, expected: .deliver),
        Row(
            name: "fail under p=reject with t=y: the disposition is quarantine",
            dmarc: .fail,
            policy: .reject,
            testing: true,
            disposition: .quarantine,
            expected: .quarantine
        ),
        Row(
            name: "temperror, policy unknown: deferred",
            dmarc: .temperror,
            expected: .deferDMARCTemporaryError(domain: "example.com")
        ),
        Row(
            name: "temperror, policy known to be reject: deferred",
            dmarc: .temperror,
            policy: .reject,
            expected: .deferDMARCTemporaryError(domain: "example.com")
        ),
        Row(
            name: "temperror, p=reject with t=y: delivered",
            dmarc: .temperror,
            policy: .reject,
            testing: true,
            expected: .deliver
        ),
        Row(name: "temperror, p=quarantine: delivered", dmarc: .temperror, policy: .quarantine, expected: .deliver),
        Row(
            name: "temperror, but DKIM passes for the author's domain: delivered",
            dkim: [(.pass, "example.com")],
            dmarc: .temperror,
            expected: .deliver
        ),
        Row(
            name: "temperror, DKIM passes for another domain: deferred",
            dkim: [(.pass, "other.example")],
            dmarc: .temperror,
            expected: .deferDMARCTemporaryError(domain: "example.com")
        ),
        Row(
            name: "temperror, but SPF passes for the author's domain (any case): delivered",
            spf: .pass,
            spfDomain: "Example.COM",
            dmarc: .temperror,
            expected: .deliver
        ),
        Row(
            name: "temperror, operator accepts",
            dmarc: .temperror,
            settings: .init(deferOnDMARCTemperror: false),
            expected: .deliver
        ),
        Row(
            name: "temperror, operator does not reject DMARC failures at all",
            dmarc: .temperror,
            settings: .init(dmarcReject: .quarantine),
            expected: .deliver
        ),
        Row(
            name: "permerror that would reject",
            dmarc: .permerror,
            disposition: .reject,
            expected: .rejectDMARCPermanentError(reason: "the reason")
        ),
        Row(name: "permerror without a reject disposition", dmarc: .permerror, disposition: .none, expected: .deliver),
        Row(
            name: "permerror, operator does not reject",
            dmarc: .permerror,
            disposition: .reject,
            settings: .init(dmarcReject: .quarantine),
            expected: .deliver
        ),
        Row(name: "no DMARC, SPF fail recorded", spf: .fail, dmarc: .none, expected: .deliver),
        Row(
            name: "no DMARC, SPF fail refused when the operator asks",
            spf: .fail,
            dmarc: .none,
            settings: .init(rejectSPFFail: true),
            expected: .rejectSPFFailure(domain: "example.com")
        ),
        Row(
            name: "SPF fail under DMARC pass: DMARC decides",
            spf: .fail,
            dkim: [(.pass, "example.com")],
            dmarc: .pass,
            settings: .init(rejectSPFFail: true),
            expected: .deliver
        ),
        Row(
            name: "no From domain: the decision still names something",
            dmarc: .temperror,
            expected: .deferDMARCTemporaryError(domain: "the sender's domain")
        ),
    ]

    @Test(arguments: Self.rows)
    func decision(_ row: Row) {
        let spf = row.spf.map {
            SPFVerdict(result: $0, domain: row.spfDomain, sender: "joe@" + row.spfDomain, reason: "")
        }
        let dkim = row.dkim.map { DKIMVerdict(result: $0.0, domain: $0.1, reason: "") }
        let dmarc = DMARCVerdict(
            result: row.dmarc,
            authorDomains: row.name.hasPrefix("no From domain") ? [] : ["example.com"],
            policy: row.policy,
            testing: row.testing,
            disposition: row.disposition,
            reason: "the reason"
        )
        #expect(Enforcement.decide(spf: spf, dkim: dkim, dmarc: dmarc, policy: row.settings) == row.expected)
    }
}
