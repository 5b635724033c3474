import Foundation
import NIOCore

/// A real authoritative DNS server for the tests: Knot DNS (Debian's `knot` package, which
/// `.ci/run` installs), on a loopback port, serving the fixture zones of DNSCoreTests plus
/// `hosts.test` (100 names for the load test, and CNAMEs into example.test), and a zone that
/// fails to load (SERVFAIL).
public final class KnotServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let process: Process

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// The zone files live with the captured packets made from them, in DNSCoreTests.
    public static var fixtureZones: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/DNSCoreTests/Fixtures").path
    }

    /// - Parameter extraZones: more zones to serve, origin → records (one per line, names
    ///   relative to the origin or absolute); the SOA and NS are added. "." serves a root zone:
    ///   then every name outside the other zones is answered (NXDOMAIN), none refused.
    public init(extraZones: [String: String] = [:]) throws {
        guard let knotd = ["/usr/sbin/knotd", "/usr/bin/knotd"].first(where: FileManager.default.isExecutableFile)
        else { throw Missing(description: "knotd is not installed: apt-get install knot") }
        self.directory = NSTemporaryDirectory() + "petrel-knot-\(UInt32.random(in: 0...UInt32.max))"
        let zones = self.directory + "/zones"
        try FileManager.default.createDirectory(atPath: zones, withIntermediateDirectories: true)
        for directory in ["run", "db"] {
            try FileManager.default.createDirectory(
                atPath: self.directory + "/" + directory,
                withIntermediateDirectories: true
            )
        }
        for zone in ["example.test.zone", "2.0.192.in-addr.arpa.zone"] {
            try FileManager.default.copyItem(atPath: Self.fixtureZones + "/" + zone, toPath: zones + "/" + zone)
        }
        var hosts =
            "$ORIGIN hosts.test.\n$TTL 600\n@ IN SOA ns.hosts.test. hostmaster.hosts.test. 1 3600 600 86400 60\n"
        hosts += "@ IN NS ns\nns IN A 127.0.0.1\n"
        // A CNAME into another zone: the answer stops at the CNAME, and the resolver asks again.
        hosts += "away IN CNAME alias.example.test.\n"
        hosts += "lost 60 IN CNAME nope.example.test.\n"
        for index in 1...100 { hosts += "h\(index) IN A 198.51.100.\(index)\n" }
        try hosts.write(toFile: zones + "/hosts.test.zone", atomically: true, encoding: .utf8)
        try "this is not a zone file\n".write(toFile: zones + "/broken.test.zone", atomically: true, encoding: .utf8)
        for (origin, records) in extraZones {
            let zone =
                "$ORIGIN \(origin == "." ? "." : origin + ".")\n$TTL 300\n"
                + "@ IN SOA ns.hosts.test. hostmaster.hosts.test. 1 3600 600 86400 60\n"
                + "@ IN NS ns.hosts.test.\n" + records + "\n"
            try zone.write(toFile: zones + "/" + Self.fileName(origin), atomically: true, encoding: .utf8)
        }
        let extraDomains = extraZones.keys.sorted().map {
            "\n  - domain: \($0)\n    file: \"\(zones)/\(Self.fileName($0))\""
        }.joined()

        var lastError = ""
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...60_000)
            let config = """
                server:
                    rundir: "\(self.directory)/run"
                    listen: 127.0.0.1@\(port)
                database:
                    storage: "\(self.directory)/db"
                template:
                  - id: default
                    storage: "\(zones)"
                    semantic-checks: off
                zone:
                  - domain: example.test
                  - domain: 2.0.192.in-addr.arpa
                  - domain: hosts.test
                  - domain: broken.test\(extraDomains)
                log:
                  - target: stderr
                    any: critical
                """
            try config.write(toFile: self.directory + "/knot.conf", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: knotd)
            process.arguments = ["-c", self.directory + "/knot.conf"]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            if Self.waitUntilAnswering(port: port), process.isRunning {
                self.port = port
                self.process = process
                return
            }
            process.terminate()
            process.waitUntilExit()
            lastError = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        throw Missing(description: "knotd did not start: \(lastError)")
    }

    private static func fileName(_ origin: String) -> String {
        "extra-" + (origin == "." ? "root" : origin) + ".zone"
    }

    public var address: SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: self.port) }

    /// Polls with a UDP query for ns.hosts.test until knot answers.
    private static func waitUntilAnswering(port: Int) -> Bool {
        let query: [UInt8] = [
            0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 110, 115, 5, 104, 111, 115, 116, 115, 4, 116, 101, 115, 116, 0, 0, 1,
            0, 1,
        ]
        for _ in 0..<100 where Self.exchange(query, port: port, timeout: .milliseconds(50)) != nil {
            return true
        }
        return false
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

    public func stop() {
        self.process.terminate()
        self.process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

extension KnotServer {
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
