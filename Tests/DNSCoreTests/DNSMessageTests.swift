import DNSCore
import Foundation
import Testing

/// The codec against real responses from Knot DNS (see Fixtures/README.md) and hostile packets.
@Suite struct DNSMessageTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "hex"))
        let text = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(try #require(UInt8(text[index..<next], radix: 16)))
            index = next
        }
        return bytes
    }

    static func message(_ name: String) throws -> DNSMessage {
        try DNSMessage(decoding: try self.fixture(name))
    }

    static func lookup(_ fixture: String, _ name: String, _ type: DNSRecordType) throws -> DNSLookupResult {
        DNSLookupResult(interpreting: try self.message(fixture), for: DNSQuestion(name: DNSName(name)!, type: type))
    }

    @Test func mx() throws {
        let message = try Self.message("mx")
        #expect(message.isResponse && message.authoritative && !message.truncated)
        #expect(message.responseCode == .noError)
        #expect(message.ednsPayloadSize != nil && message.dnssecOK)
        #expect(message.questions == [DNSQuestion(name: DNSName("example.test")!, type: .mx)])
        #expect(
            message.answers.map(\.presentation) == [
                "example.test.\t3600\tIN\tMX\t10 mx1.example.test.",
                "example.test.\t3600\tIN\tMX\t20 mx2.example.test.",
            ]
        )
        let result = try Self.lookup("mx", "Example.TEST", .mx)
        #expect(result.status == .answer && result.ttl == 3600 && !result.authenticated)
    }

    @Test(arguments: [
        ("a", "mx1.example.test", DNSRecordType.a, ["192.0.2.1"]),
        ("aaaa", "mx1.example.test", .aaaa, ["2001:db8::1"]),
        ("txt-spf", "example.test", .txt, ["\"v=spf1 ip4:192.0.2.0/24 -all\""]),
        ("txt-multi", "multi.example.test", .txt, ["\"part one \" \"part two\""]),
        (
            "tlsa", "_25._tcp.mx1.example.test", .tlsa,
            ["3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"]
        ),
        ("ptr", "1.2.0.192.in-addr.arpa", .ptr, ["mx1.example.test."]),
    ])
    func answers(fixture: String, name: String, type: DNSRecordType, rdata: [String]) throws {
        let result = try Self.lookup(fixture, name, type)
        #expect(result.status == .answer)
        #expect(result.records.map(\.data.presentation) == rdata)
    }

    @Test func txtStringsAreJoinedForSPFAndDKIM() throws {
        let record = try #require(try Self.lookup("txt-multi", "multi.example.test", .txt).records.first)
        #expect(record.text == Array("part one part two".utf8))
    }

    @Test func bigTXTIsTruncatedOverUDPAndWholeOverTCP() throws {
        let udp = try Self.message("txt-big-udp")
        #expect(udp.truncated && udp.answers.isEmpty)
        let tcp = try Self.lookup("txt-big-tcp", "big.example.test", .txt)
        #expect(tcp.status == .answer)
        #expect(tcp.records.first?.text == Array(String(repeating: "x", count: 2000).utf8))
        guard case .txt(let strings) = tcp.records.first?.data else {
            Issue.record("not TXT")
            return
        }
        #expect(strings.map(\.count) == [255, 255, 255, 255, 255, 255, 255, 215])
    }

    @Test func cnameChainIsFollowed() throws {
        let result = try Self.lookup("cname-chain", "alias.example.test", .a)
        #expect(result.status == .answer)
        #expect(result.cnames.map(\.data.presentation) == ["alias2.example.test.", "mx1.example.test."])
        #expect(result.canonicalName == DNSName("mx1.example.test"))
        #expect(result.records.map(\.data.presentation) == ["192.0.2.1"])
    }

    @Test func cnameLoopIsAFailure() throws {
        #expect(try Self.lookup("cname-loop", "loop1.example.test", .a).status == .failure(.cnameLoop))
    }

    @Test func negativeAnswersCarryTheSOATTL() throws {
        let nx = try Self.lookup("nxdomain", "nope.example.test", .a)
        #expect(nx.status == .nxDomain)
        #expect(nx.ttl == 300, "min(SOA TTL, SOA minimum)")
        let nodata = try Self.lookup("nodata", "mx2.example.test", .aaaa)
        #expect(nodata.status == .noData && nodata.ttl == 300)
    }

    @Test func failures() throws {
        #expect(try Self.lookup("servfail", "x.broken.test", .a).status == .failure(.serverFailure))
        #expect(try Self.lookup("refused", "elsewhere.example", .a).status == .failure(.refused))
    }

    @Test func queryEncodingMatchesWhatServersExpect() throws {
        let query = DNSQuery(id: 0x1234, name: DNSName("Example.test.")!, type: .mx)
        let bytes = query.encode()
        #expect(
            bytes
                == [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1] + [7] + Array("Example".utf8) + [4]
                + Array("test".utf8)
                + [0, 0, 15, 0, 1] + [0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0]
        )
        var response = try Self.message("mx")
        response.id = 0x1234
        #expect(query.isAnswered(by: response))
        response.id = 0x1235
        #expect(!query.isAnswered(by: response), "another id")
        response.id = 0x1234
        response.questions[0].type = .a
        #expect(!query.isAnswered(by: response), "another question")
    }

    @Test func namesParseAndPrint() {
        #expect(DNSName("mx.example.com")?.description == "mx.example.com.")
        #expect(DNSName("mx.example.com.")?.description == "mx.example.com.")
        #expect(DNSName(".") == DNSName.root)
        #expect(DNSName("a\\.b.example")?.labels.count == 2)
        #expect(DNSName("a\\046b.example")?.description == "a\\.b.example.")
        #expect(DNSName("MX.Example.COM") == DNSName("mx.example.com"))
        #expect(DNSName("") == nil)
        #expect(DNSName("a..b") == nil)
        #expect(DNSName(String(repeating: "a", count: 64) + ".example") == nil)
        #expect(DNSName(Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: ".")) == nil)
        #expect(DNSName.reverse(address: [192, 0, 2, 1])?.description == "1.2.0.192.in-addr.arpa.")
        #expect(
            DNSName.reverse(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])?.description
                == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        )
        // A label that is one backslash: its final dot is not an escaped one (found by the fuzzer).
        #expect(DNSName(#"test.\\."#)?.labels == [Array("test".utf8), [0x5C]])
        #expect(DNSName(#"test.\\"#)?.labels == [Array("test".utf8), [0x5C]])
        #expect(DNSName(#"a\."#)?.labels == [Array("a.".utf8)])
        #expect(DNSName(#"a\"#) == nil)
        #expect(DNSName(#"a.\256"#) == nil)
        #expect(DNSName(#"a.\25"#) == nil)
    }

    /// Any name printed in presentation form reads back as the same labels.
    @Test func presentationRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let labels = (0..<Int.random(in: 1...4, using: &generator)).map { _ in
                (0..<Int.random(in: 1...20, using: &generator)).map { _ in
                    [0x2E, 0x5C, 0x22, 0x20, 0x00, 0x41, 0x61, 0x30].randomElement(using: &generator)!
                        ^ (Bool.random(using: &generator) ? 0 : UInt8.random(in: 0...255, using: &generator))
                }
            }
            let name = DNSName(labels: labels)!
            #expect(DNSName(name.description)?.labels == labels, "\(name)")
        }
    }

    // MARK: - Hostile packets

    static let header: [UInt8] = [0xAB, 0xCD, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
    static let question: [UInt8] = [3] + Array("www".utf8) + [7] + Array("example".utf8) + [0, 0, 1, 0, 1]

    static let hostile: [(String, [UInt8], DNSDecodingError)] = [
        ("empty", [], .truncated),
        ("short header", [0xAB, 0xCD, 0x81], .truncated),
        ("answer count lies", header + question, .truncated),
        (
            "pointer to itself", header + question + [0xC0, 29] + [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4],
            .badPointer
        ),
        (
            "pointer forward", header + question + [0xC0, 40] + [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4, 0, 0, 0],
            .badPointer
        ),
        (
            "pointer out of bounds", header + question + [0xFF, 0xFF] + [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4],
            .badPointer
        ),
        ("pointer cut", header + question + [0xC0], .truncated),
        (
            "reserved label type", header + question + [0x40, 1] + [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4],
            .badLabelType
        ),
        ("label past the end", header + question + [10, 65, 65], .truncated),
        (
            "rdlength past the end", header + question + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 40, 1, 2, 3, 4],
            .truncated
        ),
        (
            "A of 5 octets", header + question + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 1, 2, 3, 4, 5],
            .badRecordData(.a)
        ),
        (
            "MX name past rdata",
            header + question + [0xC0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 3, 0, 10, 3, 65, 65, 65, 0], .badRecordData(.mx)
        ),
        (
            "TXT string past rdata", header + question + [0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 2, 5, 65],
            .badRecordData(.txt)
        ),
        (
            "trailing octets", header + question + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4, 9],
            .trailingData
        ),
        (
            "two OPT records",
            [0xAB, 0xCD, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 2] + question + [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]
                + [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0], .badRecordData(.opt)
        ),
        (
            "SOA too short", header + question + [0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 6, 0xC0, 12, 0xC0, 12, 0, 0],
            .badRecordData(.soa)
        ),
    ]

    @Test(arguments: 0..<hostile.count)
    func hostilePacketsAreErrors(index: Int) {
        let (name, packet, expected) = Self.hostile[index]
        #expect(throws: expected, "\(name)") { try DNSMessage(decoding: packet) }
    }

    @Test func overlongNamesThroughPointersAreErrors() {
        // Labels of 63 octets, each pointing back to the previous name: the name grows past 255.
        var packet: [UInt8] = [0, 0, 0x81, 0x80, 0, 5, 0, 0, 0, 0, 0, 0]
        var previous: Int?
        for _ in 0..<5 {
            let start = packet.count
            packet += [63] + [UInt8](repeating: 0x61, count: 63)
            if let previous {
                packet += [0xC0 | UInt8(previous >> 8), UInt8(previous & 0xFF)]
            } else {
                packet.append(0)
            }
            packet += [0, 1, 0, 1]
            previous = start
        }
        #expect(throws: DNSDecodingError.nameTooLong) { try DNSMessage(decoding: packet) }
    }

    /// Pointers to pointers, each going backwards: legal one by one, but no name needs more than
    /// 127 of them, and a long chain costs every record that refers to it.
    @Test(arguments: [(100, true), (126, true), (127, false), (2000, false)])
    func pointerChains(length: Int, accepted: Bool) throws {
        // Record 1 (type 99) carries a root label and then the chain in its RDATA; record 2's
        // name points at the chain's last pointer: `length` + 1 pointers to follow.
        let rdataStart = 12 + 11
        var rdata: [UInt8] = [0]
        for index in 0..<length {
            let target = index == 0 ? rdataStart : rdataStart + 1 + (index - 1) * 2
            rdata += [0xC0 | UInt8(target >> 8), UInt8(target & 0xFF)]
        }
        let last = rdataStart + 1 + (length - 1) * 2
        var packet: [UInt8] = [0, 0, 0x81, 0x80, 0, 0, 0, 2, 0, 0, 0, 0]
        packet += [0, 0, 99, 0, 1, 0, 0, 0, 60, UInt8(rdata.count >> 8), UInt8(rdata.count & 0xFF)] + rdata
        packet += [0xC0 | UInt8(last >> 8), UInt8(last & 0xFF), 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]
        if accepted {
            let message = try DNSMessage(decoding: packet)
            #expect(message.answers.last?.name == .root)
        } else {
            #expect(throws: DNSDecodingError.badPointer) { try DNSMessage(decoding: packet) }
        }
    }

    /// Random and mutated packets: errors are fine, crashes and hangs are not.
    @Test func randomPacketsNeverCrash() throws {
        var generator = SystemRandomNumberGenerator()
        let seeds = try ["mx", "cname-chain", "txt-big-tcp", "nxdomain", "tlsa"].map(Self.fixture)
        for _ in 0..<20_000 {
            var packet = seeds.randomElement(using: &generator)!
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let position = Int.random(in: 0..<packet.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: packet[position] = UInt8.random(in: 0...255, using: &generator)
                case 1: packet.removeSubrange(position...)
                default: packet.insert(UInt8.random(in: 0...255, using: &generator), at: position)
                }
                if packet.isEmpty { break }
            }
            _ = try? DNSMessage(decoding: packet)
        }
    }
}
