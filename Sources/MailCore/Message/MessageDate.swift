/// A point in time rendered as an RFC 5322 §3.3 `date-time`, e.g. `Sun, 29 Nov 2026 09:16:08 +0100`.
///
/// Built from Unix seconds and the local UTC offset so that the core never reads a clock.
public struct MessageDate: Hashable, Sendable, CustomStringConvertible {
    public var secondsSince1970: Int64
    public var utcOffsetSeconds: Int

    /// The month names of RFC 5322 dates, which IMAP's dates use too.
    public static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public init(secondsSince1970: Int64, utcOffsetSeconds: Int = 0) {
        self.secondsSince1970 = secondsSince1970
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    public var description: String {
        let local = self.secondsSince1970 + Int64(self.utcOffsetSeconds)
        let days = floorDivide(local, 86_400)
        let secondOfDay = Int(local - days * 86_400)
        let (year, month, day) = civilDate(daysSince1970: days)
        // 1970-01-01 was a Thursday.
        let weekday = Int(((days % 7) + 7 + 4) % 7)
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let offset = abs(self.utcOffsetSeconds) / 60
        let sign = self.utcOffsetSeconds < 0 ? "-" : "+"
        return "\(names[weekday]), \(day) \(Self.monthNames[month - 1]) \(year) "
            + "\(twoDigits(secondOfDay / 3600)):\(twoDigits(secondOfDay / 60 % 60)):\(twoDigits(secondOfDay % 60)) "
            + "\(sign)\(twoDigits(offset / 60))\(twoDigits(offset % 60))"
    }
}

private func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

private func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days).
private func civilDate(daysSince1970: Int64) -> (year: Int64, month: Int, day: Int) {
    let z = daysSince1970 + 719_468
    let era = floorDivide(z, 146_097)
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
    let month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    return (year, month, day)
}
