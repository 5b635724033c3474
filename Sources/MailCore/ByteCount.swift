/// A number of octets as operators write and read them: `1073741824`, `512 MiB`, `5G`, `10 GB`.
/// Suffixes are binary (K = KiB = 1024), as disks are counted by `du -h` and mail clients; `B`
/// after one is optional, and so is the space.
public enum ByteCount {
    /// Nil when the text is not a count (or is over 2^63).
    public static func parse(_ text: String) -> UInt64? {
        var rest = Substring(text.uppercased()).drop { $0 == " " }
        while rest.last == " " { rest = rest.dropLast() }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 19, let number = UInt64(digits) else { return nil }
        rest = rest.dropFirst(digits.count).drop { $0 == " " }
        let shift: UInt64
        switch rest {
        case "", "B": shift = 0
        case "K", "KB", "KIB": shift = 10
        case "M", "MB", "MIB": shift = 20
        case "G", "GB", "GIB": shift = 30
        case "T", "TB", "TIB": shift = 40
        default: return nil
        }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow, value <= UInt64(Int64.max) else { return nil }
        return value
    }

    /// `1.5 GiB`, `512 MiB`, `900 B`: for `petrel user quota` and logs.
    public static func format(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        let rounded = (value * 10).rounded() / 10
        let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        return text + " " + units[unit]
    }
}
