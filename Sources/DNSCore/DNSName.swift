/// A domain name as DNS carries it: a sequence of labels (RFC 1035 §3.1). Comparison ignores
/// ASCII case (RFC 4343); labels keep the octets they were given.
public struct DNSName: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// Labels, most specific first; the root is the empty list.
    public let labels: [[UInt8]]

    public static let root = DNSName(uncheckedLabels: [])

    /// Limits of RFC 1035 §2.3.4: 63 octets a label, 255 octets a name on the wire.
    public static let maximumLabelLength = 63
    public static let maximumWireLength = 255

    init(uncheckedLabels labels: [[UInt8]]) {
        self.labels = labels
    }

    /// Labels as they come off the wire; nil when a label is empty or too long, or the name is.
    public init?(labels: [[UInt8]]) {
        guard labels.allSatisfy({ !$0.isEmpty && $0.count <= Self.maximumLabelLength }) else { return nil }
        guard labels.reduce(1, { $0 + $1.count + 1 }) <= Self.maximumWireLength else { return nil }
        self.labels = labels
    }

    /// Parses presentation form: `mx.example.com`, with or without the final dot. `\.` and `\DDD`
    /// escapes are understood, so any label can be written.
    public init?(_ text: String) {
        if text == "." {
            self = .root
            return
        }
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        guard !bytes.isEmpty else { return nil }
        var endsWithDot = false
        while let byte = bytes.first {
            bytes = bytes.dropFirst()
            endsWithDot = byte == 0x2E
            switch byte {
            case 0x2E:  // "."
                labels.append(current)
                current = []
            case 0x5C:  // "\"
                guard let next = bytes.first else { return nil }
                if (0x30...0x39).contains(next) {
                    let digits = bytes.prefix(3)
                    guard digits.count == 3, digits.allSatisfy({ (0x30...0x39).contains($0) }),
                        let value = UInt8(String(decoding: digits, as: UTF8.self))
                    else { return nil }
                    current.append(value)
                    bytes = bytes.dropFirst(3)
                } else {
                    current.append(next)
                    bytes = bytes.dropFirst()
                }
            default:
                current.append(byte)
            }
        }
        // The final dot of a fully qualified name ends the last label; it starts no empty one.
        if !endsWithDot { labels.append(current) }
        self.init(labels: labels)
    }

    /// The name in presentation form with its final dot: `mx.example.com.`.
    public var description: String {
        if self.labels.isEmpty { return "." }
        var text = ""
        for label in self.labels {
            for byte in label {
                switch byte {
                case 0x2E, 0x5C, 0x22, 0x28, 0x29, 0x3B, 0x20:  // . \ " ( ) ; space
                    text += "\\" + String(UnicodeScalar(byte))
                case 0x21...0x7E:
                    text.append(Character(UnicodeScalar(byte)))
                default:
                    let digits = String(byte)
                    text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
                }
            }
            text += "."
        }
        return text
    }

    /// Lower-cased labels: the form for comparisons and cache keys.
    public var canonical: [[UInt8]] {
        self.labels.map { $0.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 } }
    }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool { lhs.canonical == rhs.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.canonical) }

    public static func < (lhs: DNSName, rhs: DNSName) -> Bool {
        lhs.description.lowercased() < rhs.description.lowercased()
    }

    /// The name under which a reverse (PTR) lookup of an IPv4 or IPv6 address is made
    /// (RFC 1035 §3.5, RFC 3596 §2.5).
    public static func reverse(address octets: [UInt8]) -> DNSName? {
        switch octets.count {
        case 4:
            return DNSName(
                uncheckedLabels: octets.reversed().map { Array(String($0).utf8) } + [
                    Array("in-addr".utf8), Array("arpa".utf8),
                ]
            )
        case 16:
            let nibbles = octets.reversed().flatMap { [$0 & 0x0F, $0 >> 4] }
            return DNSName(
                uncheckedLabels: nibbles.map { Array(String($0, radix: 16).utf8) } + [
                    Array("ip6".utf8), Array("arpa".utf8),
                ]
            )
        default:
            return nil
        }
    }

    /// Wire form, uncompressed.
    func encode(into bytes: inout [UInt8]) {
        for label in self.labels {
            bytes.append(UInt8(label.count))
            bytes += label
        }
        bytes.append(0)
    }
}
