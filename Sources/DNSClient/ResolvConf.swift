import Foundation
import NIOCore

/// The `nameserver` lines of /etc/resolv.conf (resolv.conf(5)). Everything else there (search
/// domains, options) is for the system's resolver; Petrel's timeout and attempts are `[dns]` keys.
public struct ResolvConf: Hashable, Sendable {
    public var servers: [String] = []

    public init(parsing text: String) {
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            // A scoped IPv6 address (fe80::1%eth0) is kept as written, and left out of `addresses`.
            if words.count >= 2, words[0] == "nameserver" { self.servers.append(String(words[1])) }
        }
    }

    public static func load(path: String = "/etc/resolv.conf") -> ResolvConf {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return ResolvConf(parsing: "") }
        return ResolvConf(parsing: text)
    }

    /// The servers as socket addresses on port 53; unparsable entries are left out.
    public var addresses: [SocketAddress] {
        self.servers.compactMap { try? SocketAddress(ipAddress: $0, port: 53) }
    }
}
