/// A domain name as it appears in an SMTP path or EHLO argument.
///
/// RFC 5321 §4.1.2: `Domain = sub-domain *("." sub-domain)`, `sub-domain = Let-dig [Ldh-str]`.
/// RFC 6531 §3.3 adds U-labels (UTF-8) when the transaction uses SMTPUTF8; whether that is
/// allowed is the session's decision, so parsing accepts UTF-8 labels and reports `isASCII`.
/// A trailing dot (`example.com.`) is not part of the SMTP grammar and is refused.
public struct Domain: Hashable, Sendable, CustomStringConvertible {
    /// The name as the peer wrote it.
    public let name: String

    /// The name with ASCII letters folded to lower case: the form used for comparisons
    /// (RFC 5321 §2.4: domain names are case-insensitive).
    public let canonical: String

    /// Whether every octet is ASCII (false for U-labels).
    public let isASCII: Bool

    /// Parses and validates a domain. Returns nil when the text is not a valid domain.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard Domain.isValid(bytes) else { return nil }
        self.name = String(text)
        self.canonical = String(decoding: bytes.map(asciiLowercased), as: UTF8.self)
        self.isASCII = bytes.allSatisfy { $0 < 0x80 }
    }

    public var description: String { self.name }

    public static func == (lhs: Domain, rhs: Domain) -> Bool { lhs.canonical == rhs.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.canonical) }

    /// RFC 1035 §2.3.4 limits: 63 octets a label, 253 octets a name (255 on the wire).
    static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        var labelLength = 0
        var previous: UInt8 = 0x2E  // "." so a leading dot or hyphen is caught below
        for byte in bytes {
            switch byte {
            case 0x2E:  // "."
                if labelLength == 0 || previous == 0x2D { return false }
                labelLength = 0
            case 0x2D:  // "-" never starts a label
                if labelLength == 0 { return false }
                labelLength += 1
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x80...0xFF:
                labelLength += 1
            default:
                return false
            }
            if labelLength > 63 { return false }
            previous = byte
        }
        return labelLength > 0 && previous != 0x2D
    }
}

@inline(__always)
public func asciiLowercased(_ byte: UInt8) -> UInt8 {
    (0x41...0x5A).contains(byte) ? byte + 0x20 : byte
}

extension String {
    /// The string with ASCII letters folded to lower case; other characters untouched.
    public var asciiLowercased: String {
        String(decoding: self.utf8.map(MailCore.asciiLowercased), as: UTF8.self)
    }
}
