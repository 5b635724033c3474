/// IMAP4rev1's mailbox name encoding (RFC 3501 §5.1.3): printable ASCII stands for itself but
/// `&`, which is written `&-`; anything else is UTF-16, base64 with `,` for `/`, between `&` and
/// `-`. IMAP4rev2 and UTF8=ACCEPT clients use UTF-8 instead; the session converts at the edge,
/// and stores names as UTF-8.
public enum ModifiedUTF7 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    public static func encode(_ name: String) -> String {
        var output = ""
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            var bytes: [UInt8] = []
            for unit in pending { bytes += [UInt8(unit >> 8), UInt8(unit & 0xFF)] }
            output += "&" + Self.base64(bytes) + "-"
            pending = []
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20, scalar.value <= 0x7E {
                flush()
                output += scalar == "&" ? "&-" : String(scalar)
            } else {
                pending += Array(String(scalar).utf16)
            }
        }
        flush()
        return output
    }

    /// nil for a name that is not modified UTF-7 as RFC 3501 writes it: 8-bit or control
    /// octets, an `&` run that is unterminated, not base64, ends with stray bits, encodes
    /// printable ASCII (which must stand for itself) or is not well-formed UTF-16, or two runs
    /// in a row.
    public static func decode(_ name: [UInt8]) -> String? {
        var output = ""
        var index = 0
        var previousWasRun = false
        while index < name.count {
            let byte = name[index]
            guard byte >= 0x20, byte <= 0x7E else { return nil }
            guard byte == UInt8(ascii: "&") else {
                output.unicodeScalars.append(Unicode.Scalar(byte))
                index += 1
                previousWasRun = false
                continue
            }
            guard let end = name[(index + 1)...].firstIndex(of: UInt8(ascii: "-")) else { return nil }
            let run = Array(name[(index + 1)..<end])
            index = end + 1
            if run.isEmpty {
                output += "&"
                previousWasRun = false
                continue
            }
            guard !previousWasRun, let bytes = Self.unbase64(run), bytes.count % 2 == 0 else { return nil }
            var units: [UInt16] = []
            for pair in stride(from: 0, to: bytes.count, by: 2) {
                units.append(UInt16(bytes[pair]) << 8 | UInt16(bytes[pair + 1]))
            }
            var scalars = String.UnicodeScalarView()
            var decoder = UTF16()
            var iterator = units.makeIterator()
            decoding: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let scalar):
                    if scalar.value >= 0x20, scalar.value <= 0x7E { return nil }
                    scalars.append(scalar)
                case .emptyInput: break decoding
                case .error: return nil
                }
            }
            output.unicodeScalars.append(contentsOf: scalars)
            previousWasRun = true
        }
        return output
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * $1.offset) }
            for sextet in 0..<(chunk.count + 1) {
                output.append(Self.alphabet[Int((value >> (18 - 6 * sextet)) & 0x3F)])
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Unpadded base64 in the `,` alphabet; nil when a character is outside it or the bits left
    /// over at the end are not zero.
    static func unbase64(_ text: [UInt8]) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text {
            guard let value = Self.alphabet.firstIndex(of: character) else { return nil }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        guard bits < 6, buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }
}
