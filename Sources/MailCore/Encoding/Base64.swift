/// Base64 (RFC 4648 §4), strict: decoding refuses characters outside the alphabet, white space,
/// and bad padding, because SASL (RFC 4954 §4) and DKIM need to tell malformed input from data.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < input.count {
            let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            output += [18, 12, 6, 0].map { alphabet[Int(value >> $0 & 63)] }
            index += 3
        }
        let rest = input.count - index
        if rest == 1 {
            let value = UInt32(input[index]) << 16
            output += [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], 0x3D, 0x3D]
        } else if rest == 2 {
            let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            output += [
                alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], 0x3D,
            ]
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes padded base64; nil when the input is not exactly that.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        let input = Array(text)
        guard input.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            let quad = input[index..<(index + 4)]
            let isLast = index + 4 == input.count
            let padding = quad.reversed().prefix { $0 == 0x3D }.count
            guard padding <= 2, isLast || padding == 0 else { return nil }
            var value: UInt32 = 0
            for (offset, character) in quad.enumerated() {
                let digit: UInt8
                if offset >= 4 - padding {
                    digit = 0
                } else {
                    digit = values[Int(character)]
                    guard digit != 0xFF else { return nil }
                }
                value = value << 6 | UInt32(digit)
            }
            // Non-canonical encodings (stray bits under the padding) are refused too.
            if padding == 1, value & 0xFF != 0 { return nil }
            if padding == 2, value & 0xFFFF != 0 { return nil }
            output.append(UInt8(value >> 16 & 0xFF))
            if padding < 2 { output.append(UInt8(value >> 8 & 0xFF)) }
            if padding < 1 { output.append(UInt8(value & 0xFF)) }
            index += 4
        }
        return output
    }

    public static func decode(_ text: String) -> [UInt8]? { self.decode(text.utf8) }
}
