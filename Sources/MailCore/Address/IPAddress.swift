/// An IPv4 or IPv6 address as octets, for the checks that compare addresses: SPF's `ip4`/`ip6`
/// networks, `a` and `mx` matches, forward-confirmed reverse DNS.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// Four octets (IPv4) or sixteen (IPv6), network order.
    public let octets: [UInt8]

    public init?(octets: [UInt8]) {
        guard octets.count == 4 || octets.count == 16 else { return nil }
        self.octets = octets
    }

    /// `192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1`.
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        if let octets = AddressLiteral.parseIPv4(text) ?? AddressLiteral.parseIPv6(text) {
            self.octets = octets
        } else {
            return nil
        }
    }

    public var isIPv4: Bool { self.octets.count == 4 }

    /// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, RFC 4291 §2.5.5.2) as the IPv4 address it
    /// carries; every other address as it is. A dual-stack listener reports IPv4 clients this way.
    public var unmapped: IPAddress {
        guard self.octets.count == 16, self.octets[0..<10].allSatisfy({ $0 == 0 }),
            self.octets[10] == 0xFF, self.octets[11] == 0xFF
        else { return self }
        return IPAddress(uncheckedOctets: Array(self.octets[12...]))
    }

    private init(uncheckedOctets: [UInt8]) { self.octets = uncheckedOctets }

    /// What per-client limits count as one client: the IPv4 address (also when it comes
    /// IPv4-mapped), or the IPv6 address's /64, since one host is given a whole /64 (RFC 6177) and
    /// counting single IPv6 addresses would give it billions of limits. Text that is no address
    /// is its own client.
    public static func client(_ text: String) -> String {
        guard let address = IPAddress(text)?.unmapped else { return text }
        guard !address.isIPv4 else { return address.description }
        return IPAddress(uncheckedOctets: Array(address.octets[..<8]) + Array(repeating: 0, count: 8)).description
            + "/64"
    }

    /// Whether the first `prefixLength` bits equal those of `network` (same family only).
    public func isIn(_ network: IPAddress, prefixLength: Int) -> Bool {
        guard self.octets.count == network.octets.count else { return false }
        var remaining = min(max(prefixLength, 0), self.octets.count * 8)
        var index = 0
        while remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            guard self.octets[index] & mask == network.octets[index] & mask else { return false }
            remaining -= 8
            index += 1
        }
        return true
    }

    /// Dotted quad, or RFC 5952 text.
    public var description: String {
        self.isIPv4
            ? self.octets.map(String.init).joined(separator: ".") : AddressLiteral.formatIPv6(self.octets)
    }
}
