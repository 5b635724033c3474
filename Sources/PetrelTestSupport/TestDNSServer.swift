import DNSCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An authoritative DNS server for the tests, in process, on a loopback port (UDP and TCP on the
/// same number), serving the fixture zones of DNSCoreTests, `hosts.test` (100 names for the load
/// test, and CNAMEs into example.test), a zone that failed to load (`broken.test`: SERVFAIL), and
/// the zones a test adds.
///
/// It answers as Knot DNS did when the tests ran against it (the captured packets in
/// Tests/DNSCoreTests/Fixtures are Knot's): AA set; the records of the name and type; a CNAME at
/// the name followed while its target is in the same zone (RFC 1034 §4.3.2), a loop given once
/// round; NXDOMAIN and NODATA with the zone's SOA, its TTL cut to the SOA MINIMUM (RFC 2308 §3);
/// REFUSED outside its zones; over UDP, TC and no records when the answer is bigger than the
/// query's EDNS payload size, or 512 octets without EDNS (RFC 6891 §7, RFC 1035 §4.2.1); the
/// OPT record echoed. Not served: delegations, wildcards, additional-section records, DNSSEC.
/// The zones are read by `ZoneFile`, strictly, so a zone that a real server would refuse fails
/// the test that wrote it.
///
/// `behaviour` makes it fail on demand (SERVFAIL, silence, delay), and `silentNames` leaves the
/// queries for some names unanswered, as a server that times out.
public final class TestDNSServer: Sendable {
    /// How the server treats queries; switched while it runs.
    public enum Behaviour: Hashable, Sendable {
        /// From the zones.
        case answer
        /// SERVFAIL to every query.
        case serverFailure
        /// Queries read and never answered: a black hole.
        case silent
        /// From the zones, each answer sent after this long.
        case delay(Duration)
    }

    /// Queries received (counted before they are read, answered or not).
    public struct Statistics: Hashable, Sendable {
        public var udpQueries = 0
        public var tcpQueries = 0
    }

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    public let port: Int
    private let shared: Shared
    private let datagramChannel: any Channel
    private let streamChannel: any Channel

    public var address: SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: self.port) }

    public var behaviour: Behaviour {
        get { self.shared.behaviour.withLockedValue { $0 } }
        set { self.shared.behaviour.withLockedValue { $0 = newValue } }
    }

    public var statistics: Statistics { self.shared.statistics.withLockedValue { $0 } }

    /// The zone files live with the captured packets made from them, in DNSCoreTests.
    public static var fixtureZones: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/DNSCoreTests/Fixtures").path
    }

    /// The server's own event loop. Test helpers block threads of
    /// `MultiThreadedEventLoopGroup.singleton` waiting for this server (`Relay` in DNSClientTests
    /// calls `exchange` from its channel handler); on a loop of the same group the answer could
    /// never be sent.
    private static let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Starts the server: reads the zones, binds TCP on an ephemeral port and UDP on the same one.
    ///
    /// - Parameters:
    ///   - extraZones: more zones to serve, origin → records (one per line, names relative to the
    ///     origin or absolute); the SOA and NS are added. "." serves a root zone: then every name
    ///     outside the other zones is answered (NXDOMAIN), none refused.
    ///   - silentNames: names whose queries, of any type and over either transport, go unanswered.
    public init(extraZones: [String: String] = [:], silentNames: Set<String> = []) throws {
        var zones: [Zone] = []
        for file in ["example.test.zone", "2.0.192.in-addr.arpa.zone"] {
            let text = try String(contentsOfFile: Self.fixtureZones + "/" + file, encoding: .utf8)
            zones.append(try Zone(origin: String(file.dropLast(".zone".count)), zone: text))
        }
        zones.append(try Zone(origin: "hosts.test", zone: Self.hostsZone))
        // Knot could not load this zone's file, and answered SERVFAIL for every name in it.
        zones.append(Zone(failed: DNSName("broken.test")!))
        for (origin, records) in extraZones.sorted(by: { $0.key < $1.key }) {
            let zone =
                "$ORIGIN \(origin.hasSuffix(".") ? origin : origin + ".")\n$TTL 300\n"
                + "@ IN SOA ns.hosts.test. hostmaster.hosts.test. 1 3600 600 86400 60\n"
                + "@ IN NS ns.hosts.test.\n" + records + "\n"
            let served = try Zone(origin: origin, zone: zone)
            guard !zones.contains(where: { $0.origin == served.origin }) else {
                throw SetupError(description: "the zone \(served.origin) is served twice")
            }
            zones.append(served)
        }
        var silent: Set<DNSName> = []
        for text in silentNames {
            guard let name = DNSName(text) else { throw SetupError(description: "'\(text)' is not a domain name") }
            silent.insert(name)
        }
        let shared = Shared(zones: Zones(zones: zones), silentNames: silent)
        self.shared = shared

        // TCP first on an ephemeral port, then UDP on that number, which another socket may hold.
        var lastError: (any Error)?
        for _ in 0..<5 {
            let stream = try ServerBootstrap(group: Self.eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    let key = ObjectIdentifier(channel)
                    shared.connections.withLockedValue { $0[key] = channel }
                    channel.closeFuture.whenComplete { _ in shared.connections.withLockedValue { $0[key] = nil } }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(StreamHandler(shared: shared))
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .wait()
            guard let port = stream.localAddress?.port else {
                stream.close(promise: nil)
                throw SetupError(description: "the TCP socket has no port")
            }
            do {
                let datagram = try DatagramBootstrap(group: Self.eventLoopGroup)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(DatagramHandler(shared: shared))
                        }
                    }
                    .bind(host: "127.0.0.1", port: port)
                    .wait()
                self.port = port
                self.streamChannel = stream
                self.datagramChannel = datagram
                return
            } catch {
                lastError = error
                stream.close(promise: nil)
            }
        }
        throw SetupError(description: "no port free for both UDP and TCP: \(String(describing: lastError))")
    }

    /// Closes the sockets and the TCP connections still open.
    public func stop() {
        self.datagramChannel.close(promise: nil)
        self.streamChannel.close(promise: nil)
        for connection in self.shared.connections.withLockedValue({ Array($0.values) }) {
            connection.close(promise: nil)
        }
    }

    /// 100 names for the load test, and CNAMEs that leave the zone.
    static var hostsZone: String {
        var hosts =
            "$ORIGIN hosts.test.\n$TTL 600\n@ IN SOA ns.hosts.test. hostmaster.hosts.test. 1 3600 600 86400 60\n"
        hosts += "@ IN NS ns\nns IN A 127.0.0.1\n"
        // A CNAME into another zone: the answer stops at the CNAME, and the resolver asks again.
        hosts += "away IN CNAME alias.example.test.\n"
        hosts += "lost 60 IN CNAME nope.example.test.\n"
        for index in 1...100 { hosts += "h\(index) IN A 198.51.100.\(index)\n" }
        return hosts
    }

    /// Sends one datagram to 127.0.0.1:`port` and waits, blocking, for one back: for test
    /// helpers, never for the resolver under test.
    public static func exchange(_ datagram: [UInt8], port: Int, timeout: Duration) -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let microseconds = timeout.components.seconds * 1_000_000 + timeout.components.attoseconds / 1_000_000_000_000
        var time = timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, datagram, datagram.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[0..<count]) : nil
    }

    /// A TXT record's data in zone-file form: quoted strings of at most 255 octets.
    public static func txt(_ text: String) -> String {
        var bytes = Array(text.utf8)[...]
        var strings: [String] = []
        repeat {
            let piece = bytes.prefix(255)
            bytes = bytes.dropFirst(255)
            let escaped = String(decoding: piece, as: UTF8.self).replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
            strings.append("\"\(escaped)\"")
        } while !bytes.isEmpty
        return "TXT " + strings.joined(separator: " ")
    }
}

// MARK: - Answering
