/// Undoing a MIME part's Content-Transfer-Encoding (RFC 2045 §6), as IMAP's BINARY (RFC 3516)
/// and SEARCH need: leniently, as mail readers decode, since what was sent cannot be refused
/// any more.
public enum TransferEncoding {
    /// The decoded octets; nil for an encoding this does not know (IMAP's `UNKNOWN-CTE`).
    public static func decode(_ body: some Collection<UInt8>, encoding: String) -> [UInt8]? {
        switch encoding.lowercased() {
        case "7bit", "8bit", "binary", "": return Array(body)
        case "base64": return Self.base64(body)
        case "quoted-printable": return Self.quotedPrintable(body)
        default: return nil
        }
    }

    private static let base64Values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(character)] = UInt8(index)
        }
        return table
    }()

    /// Base64 as RFC 2045 §6.8 reads it: characters outside the alphabet (line ends, spaces)
    /// are skipped, `=` ends the data.
    public static func base64(_ text: some Collection<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count / 4 * 3)
        var buffer: UInt32 = 0
        var bits = 0
        for character in text {
            if character == UInt8(ascii: "=") { break }
            let value = Self.base64Values[Int(character)]
            guard value != 0xFF else { continue }
            buffer = (buffer << 6 | UInt32(value)) & 0xFFFFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(buffer >> UInt32(bits) & 0xFF))
            }
        }
        return output
    }

    /// Quoted-printable (RFC 2045 §6.7): `=XX` is an octet, `=` at a line's end joins the next
    /// line, white space at a line's end was added in transport and goes; anything malformed
    /// stays as it was.
    public static func quotedPrintable(_ text: some Collection<UInt8>) -> [UInt8] {
        let input = Array(text)
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        var pendingSpace: [UInt8] = []
        while index < input.count {
            let byte = input[index]
            if byte == 0x20 || byte == 0x09 {
                pendingSpace.append(byte)
                index += 1
                continue
            }
            if byte == 0x0D || byte == 0x0A {
                pendingSpace = []  // white space before a line end
                output.append(byte)
                index += 1
                continue
            }
            output += pendingSpace
            pendingSpace = []
            guard byte == UInt8(ascii: "=") else {
                output.append(byte)
                index += 1
                continue
            }
            // A soft line break: `=`, optional white space, then CRLF or LF.
            var after = index + 1
            while after < input.count, input[after] == 0x20 || input[after] == 0x09 { after += 1 }
            if after < input.count, input[after] == 0x0A {
                index = after + 1
                continue
            }
            if after + 1 < input.count, input[after] == 0x0D, input[after + 1] == 0x0A {
                index = after + 2
                continue
            }
            if after >= input.count {
                index = input.count  // `=` at the very end: a soft break with nothing after
                continue
            }
            if index + 2 < input.count, let high = Self.hex(input[index + 1]), let low = Self.hex(input[index + 2]) {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(byte)
                index += 1
            }
        }
        output += pendingSpace
        return output
    }

    static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
