import DNSCore
import Testing

/// The encoder against the decoder (every record type and flag, encoded then decoded), and
/// against the responses Knot DNS sent (Fixtures/README.md).
@Suite struct DNSMessageEncodingTests {
    static let owner = DNSName("Host.Example.Test")!
    static let target = DNSName("mx1.example.test")!

    /// One record of each kind of RDATA the decoder knows, and two it keeps as octets.
    static let records: [(DNSRecordType, DNSRecordData)] = [
        (.a, .a([192, 0, 2, 1])),
        (.aaaa, .aaaa([0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1])),
        (.mx, .mx(preference: 10, exchange: target)),
        (.srv, .srv(priority: 0, weight: 1, port: 587, target: target)),
        (.txt, .txt([Array("v=spf1 -all".utf8)])),
        (.txt, .txt([Array("part one ".utf8), Array("part two".utf8)])),
        (.txt, .txt([[], [UInt8](repeating: 0x78, count: 255)])),
        (.cname, .name(target)),
        (.ptr, .name(target)),
        (.ns, .name(DNSName("ns.example.test")!)),
        (
            .soa,
            .soa(
                DNSSOA(
                    primary: DNSName("ns.example.test")!,
                    responsible: DNSName("hostmaster.example.test")!,
                    serial: 2_024_010_101,
                    refresh: 3600,
                    retry: 600,
                    expire: 86400,
                    minimum: 300
                )
            )
        ),
        (.tlsa, .tlsa(usage: 3, selector: 1, matchingType: 1, data: [UInt8](0..<32))),
        (.tlsa, .tlsa(usage: 2, selector: 0, matchingType: 0, data: [])),
        (DNSRecordType(rawValue: 257), .opaque([0, 5] + Array("issueletsencrypt.org".utf8))),
        (DNSRecordType(rawValue: 65_280), .opaque([])),
    ]

    @Test(arguments: Self.records)
    func recordsRoundTrip(type: DNSRecordType, data: DNSRecordData) throws {
        let record = DNSResourceRecord(name: Self.owner, type: type, ttl: 3600, data: data)
        let message = DNSMessage(
            id: 0x1234,
            authoritative: true,
            questions: [DNSQuestion(name: Self.owner, type: type)],
            answers: [record],
            authorities: [record],
            additionals: [record]
        )
        let decoded = try DNSMessage(decoding: message.encode())
        #expect(decoded == message)
        // DNSName compares without case; the octets must come back as they were sent.
        #expect(decoded.answers.first?.name.labels == Self.owner.labels)
        #expect(decoded.questions.first?.name.labels == Self.owner.labels)
    }

    /// RDATA octets as RFC 1035 §3.3 and the type's RFC lay them out.
    @Test(
        arguments: [
            (DNSRecordData.a([192, 0, 2, 1]), [192, 0, 2, 1]),
            (.mx(preference: 258, exchange: DNSName("a.b")!), [1, 2, 1, 0x61, 1, 0x62, 0]),
            (.srv(priority: 1, weight: 2, port: 25, target: .root), [0, 1, 0, 2, 0, 25, 0]),
            (.txt([[0x61, 0x62], []]), [2, 0x61, 0x62, 0]),
            (.name(DNSName("a.")!), [1, 0x61, 0]),
            (.tlsa(usage: 3, selector: 1, matchingType: 1, data: [0xAB]), [3, 1, 1, 0xAB]),
            (
                .soa(
                    DNSSOA(
                        primary: .root,
                        responsible: .root,
                        serial: 1,
                        refresh: 2,
                        retry: 3,
                        expire: 4,
                        minimum: 0x0102_0304
                    )
                ),
                [0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 1, 2, 3, 4]
            ),
            (.opaque([9, 8, 7]), [9, 8, 7]),
        ] as [(DNSRecordData, [UInt8])]
    )
    func recordDataWireFormat(data: DNSRecordData, octets: [UInt8]) {
        #expect(data.wireFormat == octets)
    }

    static let headers: [DNSMessage] = [
        DNSMessage(id: 1, isResponse: false),
        DNSMessage(id: 2, authoritative: true),
        DNSMessage(id: 3, truncated: true),
        DNSMessage(id: 4, recursionDesired: true),
        DNSMessage(id: 5, recursionAvailable: true),
        DNSMessage(id: 6, authenticatedData: true),
        DNSMessage(id: 7, checkingDisabled: true),
        DNSMessage(id: 8, opcode: 5),
        DNSMessage(id: 9, responseCode: .nameError),
        DNSMessage(id: 10, responseCode: .refused),
        // BADVERS (16): the upper bits travel in the OPT record (RFC 6891 §6.1.3).
        DNSMessage(id: 11, responseCode: DNSResponseCode(rawValue: 16), ednsPayloadSize: 1232),
        DNSMessage(id: 12, responseCode: DNSResponseCode(rawValue: 0xFF5), ednsPayloadSize: 512),
        DNSMessage(id: 13, ednsPayloadSize: 4096, dnssecOK: true),
        DNSMessage(id: 14, ednsPayloadSize: 1232, dnssecOK: false),
        DNSMessage(
            id: 0xFFFF,
            isResponse: true,
            opcode: 15,
            authoritative: true,
            truncated: true,
            recursionDesired: true,
            recursionAvailable: true,
            authenticatedData: true,
            checkingDisabled: true,
            responseCode: .serverFailure,
            ednsPayloadSize: 65_535,
            dnssecOK: true
        ),
    ]

    @Test(arguments: Self.headers)
    func headersRoundTrip(message: DNSMessage) throws {
        #expect(try DNSMessage(decoding: message.encode()) == message)
    }

    @Test func headerBits() {
        // QR, AA, RD: what Knot sends for an authoritative answer (0x8500 in every fixture).
        let answer = DNSMessage(id: 0xABCD, authoritative: true, recursionDesired: true, responseCode: .nameError)
        #expect(answer.encode() == [0xAB, 0xCD, 0x85, 0x03, 0, 0, 0, 0, 0, 0, 0, 0])
        let opt = DNSMessage(id: 1, responseCode: DNSResponseCode(rawValue: 16), ednsPayloadSize: 1232, dnssecOK: true)
        // Header, then the OPT record: root, TYPE 41, CLASS 1232, TTL ext-rcode 1 / version 0 / DO.
        #expect(
            opt.encode() == [0, 1, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 41, 0x04, 0xD0, 1, 0, 0x80, 0, 0, 0]
        )
    }

    /// A query written as a message is the query `DNSQuery` sends.
    @Test func aQueryEncodesAsDNSQueryDoes() {
        let name = DNSName("example.test")!
        let message = DNSMessage(
            id: 7,
            isResponse: false,
            recursionDesired: true,
            questions: [DNSQuestion(name: name, type: .mx)],
            ednsPayloadSize: 1232,
            dnssecOK: true
        )
        #expect(message.encode() == DNSQuery(id: 7, name: name, type: .mx).encode())
    }

    static let fixtures = [
        "a", "aaaa", "cname-chain", "cname-loop", "mx", "nodata", "nxdomain", "ptr", "refused", "servfail", "tlsa",
        "txt-big-tcp", "txt-big-udp", "txt-multi", "txt-spf",
    ]

    /// Every captured response, decoded, encoded and decoded again, is the same message: the
    /// encoder writes everything the decoder reads (Knot's EDNS options, which the decoder
    /// drops, excepted).
    @Test(arguments: Self.fixtures)
    func capturedResponsesRoundTrip(fixture: String) throws {
        let captured = try DNSMessageTests.message(fixture)
        #expect(try DNSMessage(decoding: captured.encode()) == captured)
    }

    /// The truncated answer has nothing to compress and no EDNS option: the same octets as Knot's.
    @Test func aCaptureWithoutCompressionIsReproducedExactly() throws {
        let packet = try DNSMessageTests.fixture("txt-big-udp")
        #expect(try DNSMessage(decoding: packet).encode() == packet)
    }
}
