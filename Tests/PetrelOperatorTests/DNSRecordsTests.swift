import DNSClient
import DNSCore
import Foundation
import MailAuth
import MailCore
import PetrelOperator
import PetrelServer
import PetrelTestSupport
import ServerTestSupport
import Testing

/// `petrel dns`: every record, and the zone it prints served as it is by the test DNS server, where
/// Petrel's SPF passes the configured address and its DKIM verifies a message Petrel signed.
@Suite struct DNSRecordsTests {
    static func records(keys: [DNSRecords.Key] = []) -> DNSRecords {
        DNSRecords(
            hostname: "mail.example.com",
            domains: ["example.com", "example.org"],
            addresses: [IPAddress("203.0.113.7")!, IPAddress("2001:db8::7")!],
            keys: keys
        )
    }

    @Test func recordByRecord() {
        let key = DNSRecords.Key(domain: "example.com", selector: "s1", record: "v=DKIM1; k=ed25519; p=AAAA")
        let records = Self.records(keys: [key]).records
        func find(_ name: String, _ kind: DNSRecords.Record.Kind) -> [String] {
            records.filter { $0.name == name && $0.kind == kind }.map(\.value)
        }
        #expect(find("mail.example.com", .a) == ["203.0.113.7"])
        #expect(find("mail.example.com", .aaaa) == ["2001:db8::7"])
        #expect(find("mail.example.com", .txt) == ["v=spf1 a -all"])
        for domain in ["example.com", "example.org"] {
            #expect(find(domain, .mx) == ["10 mail.example.com"])
            #expect(find(domain, .txt) == ["v=spf1 mx -all"])
            #expect(find("_dmarc.\(domain)", .txt) == ["v=DMARC1; p=none; rua=mailto:postmaster@\(domain)"])
            #expect(find("_smtp._tls.\(domain)", .txt) == ["v=TLSRPTv1; rua=mailto:postmaster@\(domain)"])
            #expect(find("_mta-sts.\(domain)", .txt).first?.hasPrefix("v=STSv1; id=") == true)
            #expect(find("_submission._tcp.\(domain)", .srv) == ["0 1 587 mail.example.com"])
            #expect(find("_submissions._tcp.\(domain)", .srv) == ["0 1 465 mail.example.com"])
            #expect(find("_imaps._tcp.\(domain)", .srv) == ["0 1 993 mail.example.com"])
            #expect(find("_imap._tcp.\(domain)", .srv) == ["10 1 143 mail.example.com"])
        }
        #expect(find("s1._domainkey.example.com", .txt) == ["v=DKIM1; k=ed25519; p=AAAA"])
        #expect(find("s1._domainkey.example.org", .txt).isEmpty, "a key signs for its own domain only")
        let ptr = records.filter { $0.kind == .ptr }
        #expect(ptr.map(\.name).first == "7.113.0.203.in-addr.arpa")
        #expect(ptr.count == 2 && ptr.allSatisfy { $0.askOwner && $0.value == "mail.example.com" })
        #expect(records.allSatisfy { !$0.reason.isEmpty })
    }

    @Test func zoneFormat() {
        let long = "v=DKIM1; k=rsa; p=" + String(repeating: "A", count: 400)
        let zone = Self.records(keys: [.init(domain: "example.com", selector: "s1", record: long)]).rendered(.zone)
        #expect(zone.contains("example.com.\tIN\tMX\t10 mail.example.com.\n"))
        #expect(zone.contains("_submission._tcp.example.com.\tIN\tSRV\t0 1 587 mail.example.com.\n"))
        // TXT strings are at most 255 octets; the record is the strings joined.
        let line = zone.split(separator: "\n").first { $0.hasPrefix("s1._domainkey.example.com.") } ?? ""
        let strings = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        #expect(strings.count == 2 && strings.allSatisfy { $0.utf8.count <= 255 })
        #expect(strings.joined() == long)
        #expect(zone.contains("; (set by the address's owner) 7.113.0.203.in-addr.arpa.\tIN\tPTR\tmail.example.com.\n"))
        let json = Self.records().rendered(.json)
        #expect(json.contains("\"ask_owner\" : true"))
        #expect(
            json.contains(
                "\"mta_sts_policy\" : \"version: STSv1\\nmode: testing\\nmx: mail.example.com\\nmax_age: 604800\\n\""
            )
        )
    }

    /// The zone as printed, served by the test DNS server: SPF passes the configured address (and
    /// fails another), and a message signed with the key on disk verifies. The server's zone
    /// reader is strict (a line it cannot read fails the test); Scripts/interop/interop.sh loads the same
    /// output into Knot DNS itself, to show that a real server takes it.
    @Test func thePrintedZoneWorks() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/petrel.toml"
        try """
        hostname = "mail.example.com"
        data_dir = "data"
        domains = ["example.com"]
        addresses = ["203.0.113.7"]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        var result = try await PetrelProcess.run(["dkim", "keygen", "example.com", "--config", config])
        #expect(result.status == 0, "\(result.standardError)")
        result = try await PetrelProcess.run(["dns", "--format", "zone", "--config", config])
        #expect(result.status == 0, "\(result.standardError)")
        let server = try TestDNSServer(extraZones: [".": result.standardOutput])
        defer { server.stop() }
        let resolver = DNSClient(
            configuration: .init(servers: [server.address], timeout: .seconds(3).stretched, attempts: 2)
        )

        let spf = SPFVerifier(resolver: resolver)
        let pass = await spf.check(ip: IPAddress("203.0.113.7")!, mailFrom: "a@example.com", helo: "mail.example.com")
        #expect(pass.result == .pass, "\(pass.reason)")
        let fail = await spf.check(ip: IPAddress("192.0.2.1")!, mailFrom: "a@example.com", helo: "mail.example.com")
        #expect(fail.result == .fail)
        let helo = await spf.checkHELO(ip: IPAddress("203.0.113.7")!, helo: "mail.example.com")
        #expect(helo.result == .pass)

        result = try await PetrelProcess.run(
            ["dkim", "sign", "--domain", "example.com", "--config", config],
            input: "From: a@example.com\r\nTo: b@example.net\r\nSubject: s\r\n\r\nbody\r\n"
        )
        #expect(result.status == 0, "\(result.standardError)")
        var scanner = MessageScanner(now: Int(Date().timeIntervalSince1970))
        scanner.append(Array(result.standardOutput.utf8))
        let verdicts = await DKIMVerifier(resolver: resolver).verify(scanner.finish())
        #expect(verdicts.map(\.result) == [.pass], "\(verdicts.map(\.reason))")
        let dmarc = await resolver.lookup(DNSName("_dmarc.example.com")!, .txt)
        #expect(dmarc.records.count == 1)
    }
}
