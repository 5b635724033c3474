import NIOCore
import NIOSSL

// Small things the NIO glue of every target writes the same way: how an address and a TLS
// version appear in logs and replies. (A `Duration` becomes a `TimeAmount` by NIO's own
// `TimeAmount(_:)`.)

extension SocketAddress {
    /// `192.0.2.1:25`, `[2001:db8::1]:25`: for logs and error messages.
    public var logText: String {
        guard let ip = self.ipAddress, let port = self.port else { return "\(self)" }
        if case .v6 = self { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }

    /// The address without its port (`192.0.2.1`, `2001:db8::1`); a Unix socket's path.
    public var ipText: String { self.ipAddress ?? "\(self)" }
}

extension TLSVersion {
    /// `TLSv1.3`, as OpenSSL and Postfix write it (and `Received` fields carry it).
    public var name: String {
        switch self {
        case .tlsv1: return "TLSv1"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }
}
