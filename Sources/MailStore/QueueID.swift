import PetrelSystem
import Synchronization

/// Queue ids: 14 characters of Crockford base32, time-ordered (microseconds since 1970) with a
/// per-process counter, e.g. `01KB7Z3XQ4M2A7`. They name the message in logs, in the `Received:`
/// header, in the 250 reply and in the Maildir file name, so one id finds a message everywhere.
public final class QueueIDGenerator: Sendable {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    private let counter = Atomic<UInt32>(UInt32.random(in: 0..<32_768))

    public init() {}

    public func next() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let micros = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
        let count = self.counter.wrappingAdd(1, ordering: .relaxed).newValue
        var text = [UInt8](repeating: 0, count: 14)
        var value = micros
        for index in (0..<11).reversed() {
            text[index] = Self.alphabet[Int(value & 31)]
            value >>= 5
        }
        var suffix = count
        for index in (11..<14).reversed() {
            text[index] = Self.alphabet[Int(suffix & 31)]
            suffix >>= 5
        }
        return String(decoding: text, as: UTF8.self)
    }
}
