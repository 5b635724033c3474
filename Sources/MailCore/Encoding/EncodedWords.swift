/// RFC 2047 encoded-words in header text (`=?utf-8?q?J=C3=B6rg?=`), decoded for reading and
/// searching. Charsets: UTF-8, US-ASCII and ISO-8859-1 (and Windows-1252, which senders label
/// ISO-8859-1 alike); a word in another charset, or malformed, stays as written.
public enum EncodedWords {
    public static func decode(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var output = ""
        var index = 0
        var literalStart = 0
        var lastWasEncoded = false
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "="), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "?"),
                let (decoded, end) = Self.word(bytes, at: index)
            else {
                index += 1
                continue
            }
            let between = bytes[literalStart..<index]
            // White space between two encoded-words is not shown (RFC 2047 §6.2).
            if !(lastWasEncoded && between.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }) {
                output += String(decoding: between, as: UTF8.self)
            }
            output += decoded
            index = end
            literalStart = end
            lastWasEncoded = true
        }
        output += String(decoding: bytes[literalStart...], as: UTF8.self)
        return output
    }

    /// The encoded-word at `start`, decoded, and where it ends.
    static func word(_ bytes: [UInt8], at start: Int) -> (String, Int)? {
        // =?charset?encoding?text?=, at most 200 octets (RFC 2047 says 75; senders exceed it).
        let limit = min(bytes.count, start + 200)
        guard let firstQuestion = Self.find(UInt8(ascii: "?"), in: bytes, from: start + 2, to: limit),
            let secondQuestion = Self.find(UInt8(ascii: "?"), in: bytes, from: firstQuestion + 1, to: limit),
            secondQuestion == firstQuestion + 2,
            let close = Self.find(UInt8(ascii: "?"), in: bytes, from: secondQuestion + 1, to: limit),
            close + 1 < bytes.count, bytes[close + 1] == UInt8(ascii: "=")
        else { return nil }
        var charset = String(decoding: bytes[(start + 2)..<firstQuestion], as: UTF8.self).lowercased()
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }  // RFC 2231 language
        let payload = bytes[(secondQuestion + 1)..<close]
        let octets: [UInt8]
        switch bytes[firstQuestion + 1] {
        case UInt8(ascii: "B"), UInt8(ascii: "b"):
            octets = TransferEncoding.base64(payload)
        case UInt8(ascii: "Q"), UInt8(ascii: "q"):
            octets = TransferEncoding.quotedPrintable(payload.map { $0 == UInt8(ascii: "_") ? 0x20 : $0 })
        default:
            return nil
        }
        guard let text = Self.text(octets, charset: charset) else { return nil }
        return (text, close + 2)
    }

    static func find(_ byte: UInt8, in bytes: [UInt8], from: Int, to: Int) -> Int? {
        guard from < to else { return nil }
        return bytes[from..<to].firstIndex(of: byte)
    }

    /// Windows-1252's 0x80–0x9F (the rest of its upper half is ISO-8859-1's).
    static let windows1252: [UInt32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,
        0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
        0x0153, 0x9D, 0x017E, 0x0178,
    ]

    public static func text(_ octets: [UInt8], charset: String) -> String? {
        switch charset {
        case "utf-8", "utf8", "us-ascii", "ascii":
            return String(decoding: octets, as: UTF8.self)
        case "iso-8859-1", "latin1", "iso8859-1", "windows-1252", "cp1252":
            var scalars = String.UnicodeScalarView()
            for octet in octets {
                let value = (0x80...0x9F).contains(octet) ? Self.windows1252[Int(octet - 0x80)] : UInt32(octet)
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            }
            return String(scalars)
        default:
            return nil
        }
    }
}
