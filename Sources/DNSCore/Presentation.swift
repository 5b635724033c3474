import PetrelSystem

extension DNSResourceRecord {
    /// The record as a zone file (and `dig +noall +answer`) writes it:
    /// `example.com. 3600 IN MX 10 mx.example.com.`
    public var presentation: String {
        let recordClass = self.recordClass == 1 ? "IN" : "CLASS\(self.recordClass)"
        return "\(self.name)\t\(self.ttl)\t\(recordClass)\t\(self.type)\t\(self.data.presentation)"
    }
}

extension DNSRecordData {
    /// RDATA in presentation form (RFC 1035 §5.1; RFC 3597 §5 for unknown types).
    public var presentation: String {
        switch self {
        case .a(let octets), .aaaa(let octets):
            return Self.address(octets)
        case .mx(let preference, let exchange):
            return "\(preference) \(exchange)"
        case .srv(let priority, let weight, let port, let target):
            return "\(priority) \(weight) \(port) \(target)"
        case .txt(let strings):
            return strings.map(Self.quoted).joined(separator: " ")
        case .name(let name):
            return name.description
        case .soa(let soa):
            return
                "\(soa.primary) \(soa.responsible) \(soa.serial) \(soa.refresh) \(soa.retry) \(soa.expire) \(soa.minimum)"
        case .tlsa(let usage, let selector, let matchingType, let data):
            return "\(usage) \(selector) \(matchingType) \(Self.hex(data))"
        case .opaque(let data):
            return data.isEmpty ? "\\# 0" : "\\# \(data.count) \(Self.hex(data))"
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] }, as: UTF8.self)
    }

    static func quoted(_ string: [UInt8]) -> String {
        var text = "\""
        for byte in string {
            switch byte {
            case 0x22, 0x5C: text += "\\" + String(UnicodeScalar(byte))
            case 0x20...0x7E: text.append(Character(UnicodeScalar(byte)))
            default:
                let digits = String(byte)
                text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
            }
        }
        return text + "\""
    }

    /// inet_ntop: dotted quad, or RFC 5952 text for IPv6.
    static func address(_ octets: [UInt8]) -> String {
        let family = octets.count == 4 ? AF_INET : AF_INET6
        var text = [CChar](repeating: 0, count: 64)
        let result = octets.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        guard result != nil else { return Self.hex(octets) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
