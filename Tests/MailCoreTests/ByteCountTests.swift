import MailCore
import Testing

/// Sizes as operators write them (`quota.storage`, `petrel user quota`).
@Suite struct ByteCountTests {
    @Test(
        arguments: [
            ("1073741824", 1_073_741_824), ("5G", 5 << 30), ("5 GiB", 5 << 30), ("5gb", 5 << 30), ("512M", 512 << 20),
            ("512 MiB", 512 << 20), ("4K", 4_096), ("1 T", 1 << 40), ("0", 0), ("  7 B ", 7),
        ] as [(String, UInt64)]
    )
    func sizes(text: String, expected: UInt64) {
        #expect(ByteCount.parse(text) == expected)
    }

    @Test(arguments: ["", "G", "5 X", "-5", "5.5G", "1 PiB", "99999999999999999999", "9000000000T", "5 G B"])
    func notSizes(text: String) {
        #expect(ByteCount.parse(text) == nil)
    }

    @Test func formatted() {
        #expect(ByteCount.format(900) == "900 B")
        #expect(ByteCount.format(4_096) == "4 KiB")
        #expect(ByteCount.format(1_610_612_736) == "1.5 GiB")
        #expect(ByteCount.format(3_380) == "3.3 KiB")
    }
}
