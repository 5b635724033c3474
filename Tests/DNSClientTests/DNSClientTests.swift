import DNSClient
import DNSCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PetrelTestSupport
import Testing

/// The stub resolver against an authoritative DNS server on loopback (`TestDNSServer`, which
/// answers as Knot DNS did for the captured fixtures), and against misbehaving fakes.
@Suite(.serialized) struct DNSClientTests {
    static func client(
        _ servers: [SocketAddress],
        timeout: Duration = .seconds(3).stretched,  // generous: a loaded CI machine, not the code, is slow
        attempts: Int = 1
    ) -> DNSClient {
        DNSClient(configuration: .init(servers: servers, timeout: timeout, attempts: attempts))
    }

    @Test func recordTypes() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let client = Self.client([server.address])
        func rdata(_ name: String, _ type: DNSRecordType) async -> [String] {
            let result = await client.lookup(DNSName(name)!, type)
            #expect(result.status == .answer, "\(name) \(type): \(result.status)")
            return result.records.map(\.data.presentation)
        }
        #expect(await rdata("example.test", .mx) == ["10 mx1.example.test.", "20 mx2.example.test."])
        #expect(await rdata("mx1.example.test", .a) == ["192.0.2.1"])
        #expect(await rdata("mx1.example.test", .aaaa) == ["2001:db8::1"])
        #expect(await rdata("multi.example.test", .txt) == ["\"part one \" \"part two\""])
        #expect(await rdata("1.2.0.192.in-addr.arpa", .ptr) == ["mx1.example.test."])
        #expect(
            await rdata("_25._tcp.mx1.example.test", .tlsa) == [
                "3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
            ]
        )
        #expect(client.statistics.tcpQueries == 0)
    }

    @Test func truncatedAnswersAreRetriedOverTCP() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let client = Self.client([server.address])
        let result = await client.lookup(DNSName("big.example.test")!, .txt)
        #expect(result.status == .answer)
        #expect(result.records.first?.text == Array(String(repeating: "x", count: 2000).utf8))
        #expect(client.statistics.tcpQueries == 1)
        #expect(server.statistics.udpQueries == 1 && server.statistics.tcpQueries == 1)
    }

    @Test func cnamesNegativeAnswersAndFailures() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let client = Self.client([server.address])
        let alias = await client.lookup(DNSName("alias.example.test")!, .a)
        #expect(alias.status == .answer && alias.records.map(\.data.presentation) == ["192.0.2.1"])
        #expect(alias.cnames.count == 2)
        #expect(await client.lookup(DNSName("loop1.example.test")!, .a).status == .failure(.cnameLoop))
        let nx = await client.lookup(DNSName("nope.example.test")!, .a)
        #expect(nx.status == .nxDomain && nx.ttl == 300)
        #expect(await client.lookup(DNSName("mx2.example.test")!, .aaaa).status == .noData)
        // A CNAME into another zone, to a name that does not exist: NXDOMAIN speaks of the target.
        let lost = await client.lookup(DNSName("lost.hosts.test")!, .a)
        #expect(lost.status == .nxDomain && lost.cnames.count == 1)
        #expect(lost.ttl == 60, "the CNAME (60 s) expires before the negative answer (300 s)")
        let away = await client.lookup(DNSName("away.hosts.test")!, .mx)
        #expect(away.status == .noData && away.cnames.count == 3)
        #expect(await client.lookup(DNSName("x.broken.test")!, .a).status == .failure(.serverFailure))
        #expect(await client.lookup(DNSName("elsewhere.example")!, .a).status == .failure(.refused))
    }

    @Test func silenceIsATimeoutAndTheNextServerIsTried() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let silent = try await BlackHole.start()
        defer { silent.stop() }
        let started = ContinuousClock.now
        let alone = await Self.client([silent.address], timeout: .milliseconds(300), attempts: 2).lookup(
            DNSName("mx1.example.test")!,
            .a
        )
        #expect(alone.status == .failure(.timeout))
        #expect(ContinuousClock.now - started < .seconds(3).stretched)
        let fallback = await Self.client([silent.address, server.address]).lookup(
            DNSName("mx1.example.test")!,
            .a
        )
        #expect(fallback.status == .answer)
    }

    /// A server that fails (SERVFAIL), says nothing, or is slow, switched while it runs; and
    /// names it leaves unanswered.
    @Test func failingServers() async throws {
        let failing = try TestDNSServer()
        defer { failing.stop() }
        let good = try TestDNSServer()
        defer { good.stop() }
        failing.behaviour = .serverFailure
        let next = await Self.client([failing.address, good.address]).lookup(DNSName("mx1.example.test")!, .a)
        #expect(next.status == .answer, "SERVFAIL moves on to the next server")
        #expect(failing.statistics.udpQueries == 1 && good.statistics.udpQueries == 1)
        let alone = await Self.client([failing.address]).lookup(DNSName("mx1.example.test")!, .a)
        #expect(alone.status == .failure(.serverFailure))

        failing.behaviour = .silent
        let silent = await Self.client([failing.address], timeout: .milliseconds(300)).lookup(
            DNSName("mx1.example.test")!,
            .a
        )
        #expect(silent.status == .failure(.timeout))

        failing.behaviour = .delay(.milliseconds(200))
        let started = ContinuousClock.now
        let slow = await Self.client([failing.address]).lookup(DNSName("mx1.example.test")!, .a)
        #expect(slow.status == .answer && ContinuousClock.now - started >= .milliseconds(200))
        #expect(failing.statistics.udpQueries == 4 && failing.statistics.tcpQueries == 0)

        let partly = try TestDNSServer(silentNames: ["MX2.example.test"])
        defer { partly.stop() }
        // A short wait for the name that is never answered; the usual one (room for a loaded
        // machine) for the one that is.
        let impatient = Self.client([partly.address], timeout: .milliseconds(500))
        #expect(await impatient.lookup(DNSName("mx2.example.test")!, .a).status == .failure(.timeout))
        #expect(await Self.client([partly.address]).lookup(DNSName("mx1.example.test")!, .a).status == .answer)
    }

    @Test func responsesThatDoNotMatchAreDropped() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let spoofer = try await Relay.start(upstream: server.address, forge: true)
        defer { spoofer.stop() }
        // The time-out only bounds the wait (room for a loaded machine): a forgery taken would
        // show in the records, not in the time.
        let result = await Self.client([spoofer.address], timeout: .seconds(10).stretched).lookup(
            DNSName("mx1.example.test")!,
            .a
        )
        #expect(result.status == .answer)
        #expect(result.records.map(\.data.presentation) == ["192.0.2.1"])
        #expect(spoofer.forgeriesSent == 3)
    }

    /// The query asks for DNSSEC (EDNS0, DO) so a validating resolver reports AD, and AD is passed
    /// on only when every response of a CNAME chain had it.
    @Test func theADBitIsReported() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let validating = try await Relay.start(upstream: server.address, authenticate: { _ in true })
        defer { validating.stop() }
        let client = Self.client([validating.address])
        let direct = await client.lookup(DNSName("mx1.example.test")!, .a)
        #expect(direct.status == .answer && direct.authenticated)
        let query = try #require(validating.queries.first)
        #expect(query.recursionDesired && query.dnssecOK && query.ednsPayloadSize == 1232)
        #expect(!query.isResponse && query.questions.count == 1 && query.answers.isEmpty)

        // away.hosts.test is a CNAME to alias.example.test, another zone: two queries.
        let chain = await client.lookup(DNSName("away.hosts.test")!, .a)
        #expect(chain.status == .answer && chain.authenticated)
        #expect(
            chain.cnames.map(\.name.description) == ["away.hosts.test.", "alias.example.test.", "alias2.example.test."]
        )
        #expect(chain.records.map(\.data.presentation) == ["192.0.2.1"])

        let halfValidated = try await Relay.start(
            upstream: server.address,
            authenticate: { $0.description.hasSuffix("example.test.") }
        )
        defer { halfValidated.stop() }
        let half = await Self.client([halfValidated.address]).lookup(DNSName("away.hosts.test")!, .a)
        #expect(half.status == .answer && !half.authenticated, "the first link was not validated")
        #expect(half.records.map(\.data.presentation) == ["192.0.2.1"])
        #expect(halfValidated.queries.count == 2)

        #expect(await Self.client([server.address]).lookup(DNSName("mx1.example.test")!, .a).authenticated == false)
    }

    /// 1,000 lookups of 100 names at once: one query a name, the rest coalesced or cached; a
    /// second round is answered from the cache without a packet.
    @Test func concurrentLookupsAreCoalescedAndCached() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let client = Self.client([server.address], timeout: .seconds(2).stretched, attempts: 2)
        func round() async -> [DNSLookupResult] {
            await withTaskGroup(of: DNSLookupResult.self) { group in
                for index in 0..<1000 {
                    group.addTask { await client.lookup(DNSName("h\(index % 100 + 1).hosts.test")!, .a) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        let first = await round()
        #expect(first.allSatisfy { $0.status == .answer }, "\(first.filter { $0.status != .answer }.prefix(3))")
        let afterFirst = client.statistics
        #expect(afterFirst.queriesSent == 100)
        #expect(afterFirst.lookups == 1000)
        let second = await round()
        #expect(second.allSatisfy { $0.status == .answer })
        let afterSecond = client.statistics
        #expect(afterSecond.queriesSent == 100, "repeats make no new packets")
        #expect(afterSecond.cacheHits - afterFirst.cacheHits == 1000)
        print(
            "dns: 2 × 1000 lookups of 100 names: \(afterSecond.queriesSent) queries, \(afterSecond.coalesced) coalesced, "
                + "\(afterSecond.cacheHits) cache hits"
        )
    }

    @Test func cacheExpiresAndCachesNegativeAnswers() async throws {
        let server = try TestDNSServer()
        defer { server.stop() }
        let clock = ManualClock()
        let client = DNSClient(
            configuration: .init(servers: [server.address], timeout: .seconds(2).stretched, attempts: 1),
            now: { clock.now }
        )
        _ = await client.lookup(DNSName("nope.example.test")!, .a)
        clock.advance(.seconds(299))
        let cached = await client.lookup(DNSName("nope.example.test")!, .a)
        #expect(cached.status == .nxDomain && cached.ttl == 1)
        #expect(client.statistics.queriesSent == 1)
        clock.advance(.seconds(2))
        _ = await client.lookup(DNSName("nope.example.test")!, .a)
        #expect(client.statistics.queriesSent == 2, "expired after the SOA minimum")
    }

    @Test func resolvConf() {
        let conf = ResolvConf(
            parsing: """
                # comment
                search example.com
                nameserver 127.0.0.53
                nameserver ::1
                nameserver not-an-address
                ; another comment
                nameserver	192.0.2.53 # trailing
                nameserver
                options edns0 timeout:3 attempts:4 rotate
                """
        )
        #expect(conf.servers == ["127.0.0.53", "::1", "not-an-address", "192.0.2.53"])
        #expect(conf.addresses.count == 3)
    }
}

/// A clock the tests move by hand.
final class ManualClock: Sendable {
    private let current = NIOLockedValueBox(ContinuousClock.now)
    var now: ContinuousClock.Instant { self.current.withLockedValue { $0 } }
    func advance(_ duration: Duration) { self.current.withLockedValue { $0 += duration } }
}

/// A UDP socket that reads queries and never answers.
final class BlackHole: Sendable {
    let channel: any Channel
    let address: SocketAddress

    private init(channel: any Channel) {
        self.channel = channel
        self.address = channel.localAddress!
    }

    static func start() async throws -> BlackHole {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(
            host: "127.0.0.1",
            port: 0
        ).get()
        return BlackHole(channel: channel)
    }

    func stop() { self.channel.close(promise: nil) }
}

/// Relays queries to the test server, and can play a validating resolver (setting AD on the
/// answers for some names) or an attacker (sending three forgeries first: a wrong id, a different
/// question, and garbage). It keeps the queries it saw.
final class Relay: Sendable {
    let channel: any Channel
    let address: SocketAddress
    private let state = NIOLockedValueBox<(forgeries: Int, queries: [DNSMessage])>((0, []))
    var forgeriesSent: Int { self.state.withLockedValue { $0.forgeries } }
    var queries: [DNSMessage] { self.state.withLockedValue { $0.queries } }

    private init(channel: any Channel) {
        self.channel = channel
        self.address = channel.localAddress!
    }

    static func start(
        upstream: SocketAddress,
        forge: Bool = false,
        authenticate: @escaping @Sendable (DNSName) -> Bool = { _ in false }
    ) async throws -> Relay {
        let box = NIOLockedValueBox<Relay?>(nil)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        Handler(
                            upstream: upstream,
                            forge: forge,
                            authenticate: authenticate,
                            relay: { box.withLockedValue { $0 } }
                        )
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let relay = Relay(channel: channel)
        box.withLockedValue { $0 = relay }
        return relay
    }

    func stop() { self.channel.close(promise: nil) }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let upstream: SocketAddress
        let forge: Bool
        let authenticate: @Sendable (DNSName) -> Bool
        let relay: @Sendable () -> Relay?

        init(
            upstream: SocketAddress,
            forge: Bool,
            authenticate: @escaping @Sendable (DNSName) -> Bool,
            relay: @escaping @Sendable () -> Relay?
        ) {
            self.upstream = upstream
            self.forge = forge
            self.authenticate = authenticate
            self.relay = relay
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = self.unwrapInboundIn(data)
            let query = Array(envelope.data.readableBytesView)
            guard let parsed = try? DNSMessage(decoding: query), let name = parsed.questions.first?.name else { return }
            self.relay()?.state.withLockedValue { $0.queries.append(parsed) }
            // Ask the test server (blocking is fine in a test helper: that server has a loop of its own).
            guard var real = TestDNSServer.exchange(query, port: self.upstream.port!, timeout: .seconds(1).stretched)
            else { return }
            if self.authenticate(name) { real[3] |= 0x20 }
            var datagrams: [[UInt8]] = []
            if self.forge {
                var wrongID = real
                wrongID[1] ^= 0xFF
                // The same response, but to another question: QTYPE (after the name at offset 12) says AAAA.
                var wrongQuestion = real
                if let end = wrongQuestion[12...].firstIndex(of: 0), end + 2 < wrongQuestion.count {
                    wrongQuestion[end + 1] = 0
                    wrongQuestion[end + 2] = 28
                }
                datagrams = [wrongID, wrongQuestion, [0xDE, 0xAD, 0xBE, 0xEF]]
                self.relay()?.state.withLockedValue { $0.forgeries += 3 }
            }
            for datagram in datagrams + [real] {
                context.write(
                    self.wrapOutboundOut(
                        AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: datagram))
                    ),
                    promise: nil
                )
            }
            context.flush()
        }
    }
}

/// The zone-file reader `TestDNSServer` serves from: RFC 1035 §5 as the test zones and
/// `petrel dns --format zone` write it, and an error naming the line for anything else.
@Suite struct ZoneFileTests {
    @Test func readsWhatTheZonesUse() throws {
        let zone = try ZoneFile(
            """
            $ORIGIN example.test.
            $TTL 1h
            @ IN SOA ns hostmaster.example.test. (
                    1       ; serial
                    3600 600 86400
                    300 )   ; minimum
            @ NS ns.example.test.
            ns IN 60 A 127.0.0.1
              60 IN AAAA 2001:db8::1
            mx.other.test. 120 MX 10 @
            txt TXT "a \\"quoted\\" ; string" plain "back\\\\slash" "\\065\\066"
            _25._tcp TLSA 3 1 1 ( 0123456789abcdef
                                  0123456789ABCDEF )
            _submission._tcp IN SRV 0 1 587 mail.example.com.
            caa CAA 0 issue "ca.example"
            alias CNAME txt
            unknown TYPE65280 \\# 2 abCD

            $ORIGIN sub
            www PTR example.test.
            """,
            origin: .root
        )
        #expect(
            zone.records.map(\.presentation) == [
                "example.test.\t3600\tIN\tSOA\tns.example.test. hostmaster.example.test. 1 3600 600 86400 300",
                "example.test.\t3600\tIN\tNS\tns.example.test.",
                "ns.example.test.\t60\tIN\tA\t127.0.0.1",
                "ns.example.test.\t60\tIN\tAAAA\t2001:db8::1",
                "mx.other.test.\t120\tIN\tMX\t10 example.test.",
                "txt.example.test.\t3600\tIN\tTXT\t\"a \\\"quoted\\\" ; string\" \"plain\" \"back\\\\slash\" \"AB\"",
                "_25._tcp.example.test.\t3600\tIN\tTLSA\t3 1 1 0123456789ABCDEF0123456789ABCDEF",
                "_submission._tcp.example.test.\t3600\tIN\tSRV\t0 1 587 mail.example.com.",
                "caa.example.test.\t3600\tIN\tTYPE257\t\\# 17 0005697373756563612E6578616D706C65",
                "alias.example.test.\t3600\tIN\tCNAME\ttxt.example.test.",
                "unknown.example.test.\t3600\tIN\tTYPE65280\t\\# 2 ABCD",
                "www.sub.example.test.\t3600\tIN\tPTR\texample.test.",
            ]
        )
    }

    @Test(arguments: [
        ("@ IN A 192.0.2.1", 1),  // no TTL anywhere
        ("$TTL 60\nhost IN A 192.0.2", 2),
        ("$TTL 60\n\nhost IN BOGUS 1", 3),
        ("$TTL 60\nhost IN MX 10", 2),
        ("$TTL 60\nhost IN A 192.0.2.1 extra", 2),
        ("$TTL 60\nhost CH A 192.0.2.1", 2),
        ("$TTL 60\nhost TXT \"unterminated", 2),
        ("$TTL 60\nhost TXT \"" + String(repeating: "x", count: 256) + "\"", 2),
        ("$TTL 60\n@ SOA ns hostmaster ( 1 2 3 4\n5", 2),
        ("$TTL 60\nhost A 192.0.2.1 )", 2),
        ("$TTL 60\n  IN A 192.0.2.1", 2),  // a blank owner with no record before
        ("$TTL 60\nhost TYPE99 1", 2),
        ("$TTL 60\nhost TLSA 3 1 1 abc", 2),
        ("$TTL 60\nhost TYPE99 \\# 3 abcd", 2),
        ("$TTL 60\na..b A 192.0.2.1", 2),
        ("$INCLUDE other.zone", 1),
        ("$TTL 60\nhost A 192.0.2.1\nthis is not a zone file", 3),
    ])
    func errorsNameTheLine(text: String, line: Int) {
        let error = #expect(throws: ZoneFile.SyntaxError.self, "\(text)") {
            try ZoneFile(text, origin: DNSName("example.test")!)
        }
        #expect(error?.line == line, "\(String(describing: error))")
    }
}
