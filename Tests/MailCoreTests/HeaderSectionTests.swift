import Testing

@testable import MailCore

/// The header section split into fields exactly as they came: DKIM hashes them, SEARCH reads
/// them, and a malformed line is kept, never lost.
@Suite struct HeaderSectionTests {
    @Test(
        arguments: [
            ("Subject: a\r\nFrom: b\r\n", ["Subject", "From"], ["Subject: a\r\n", "From: b\r\n"]),
            ("Subject: a\r\n b\r\n\tc\r\nTo: d\r\n", ["Subject", "To"], ["Subject: a\r\n b\r\n\tc\r\n", "To: d\r\n"]),
            ("Subject: a\nTo: b\n", ["Subject", "To"], ["Subject: a\n", "To: b\n"]),
            ("Subject: no line end", ["Subject"], ["Subject: no line end"]),
            ("Subject : obsolete space\r\n", ["Subject"], ["Subject : obsolete space\r\n"]),
            ("no colon here\r\nTo: x\r\n", ["", "To"], ["no colon here\r\n", "To: x\r\n"]),
            (" leading space: x\r\nTo: y\r\n", ["", "To"], [" leading space: x\r\n", "To: y\r\n"]),
            ("Bad Name: x\r\n", [""], ["Bad Name: x\r\n"]),
            (": empty name\r\n", [""], [": empty name\r\n"]),
            ("\r\n", [""], ["\r\n"]),
            ("", [], []),
        ] as [(String, [String], [String])]
    )
    func fieldsAreSplitAsTheyCame(text: String, names: [String], raws: [String]) {
        let section = HeaderSection(parsing: Array(text.utf8))
        #expect(section.fields.map(\.name) == names)
        #expect(section.fields.map { String(decoding: $0.raw, as: UTF8.self) } == raws)
        #expect(section.bytes == Array(text.utf8), "nothing lost, nothing added")
        // Any collection of octets, contiguous or not, gives the same fields.
        #expect(HeaderSection(parsing: Array(text.utf8)[...]) == section)
        #expect(HeaderSection(parsing: text.utf8) == section)
    }

    /// Random octets from a small alphabet of what matters (line ends, folding, colons) against
    /// the plain line-by-line model.
    @Test(arguments: [1, 2, UInt64.random(in: 3...UInt64.max)])
    func randomInputMatchesTheLineModel(seed: UInt64) {
        let alphabet: [UInt8] = Array("a:\r\n \tZ".utf8) + [0x00, 0xFF]
        var generator = SplitMix(seed)
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                alphabet.randomElement(using: &generator)!
            }
            let section = HeaderSection(parsing: bytes)
            #expect(section.fields.map(\.raw) == Self.model(bytes), "\(bytes)")
        }
    }

    /// Lines end after LF; a line starting with SP or HT continues the field before it.
    static func model(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var line: [UInt8] = []
        for byte in bytes {
            line.append(byte)
            if byte == 0x0A {
                lines.append(line)
                line = []
            }
        }
        if !line.isEmpty { lines.append(line) }
        var fields: [[UInt8]] = []
        for line in lines {
            if let first = line.first, first == 0x20 || first == 0x09, !fields.isEmpty {
                fields[fields.count - 1] += line
            } else {
                fields.append(line)
            }
        }
        return fields
    }

    /// A generator that replays from its seed (the failing case's seed is in its name).
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(_ seed: UInt64) { self.state = seed }
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
