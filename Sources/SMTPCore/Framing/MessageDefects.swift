/// What was wrong with a message's content; any defect means the message is refused at its end.
///
/// RFC 5321 §2.3.8: lines end in CRLF, and CR and LF must not appear alone. Accepting a bare LF or
/// CR is what lets `<LF>.<LF>` or `<CR>.<CR>` smuggle a second message through a server that reads
/// it differently (SEC Consult 2023, CVE-2023-51764). §4.5.3.1.6: a text line is at most 1000
/// octets with its CRLF. NUL is not text (RFC 5322 §2.1, RFC 6152 §3).
public struct MessageDefects: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let bareLineFeed = MessageDefects(rawValue: 1 << 0)
    public static let bareCarriageReturn = MessageDefects(rawValue: 1 << 1)
    public static let nul = MessageDefects(rawValue: 1 << 2)
    public static let lineTooLong = MessageDefects(rawValue: 1 << 3)
    public static let tooLarge = MessageDefects(rawValue: 1 << 4)

    /// Why the message is refused, for the reply text; nil when there is no content defect.
    /// `tooLarge` is reported with its own reply (552) and is left out here.
    public var explanation: String? {
        if self.contains(.bareLineFeed) { return "bare LF in the message; lines must end with CRLF (RFC 5321 2.3.8)" }
        if self.contains(.bareCarriageReturn) {
            return "bare CR in the message; lines must end with CRLF (RFC 5321 2.3.8)"
        }
        if self.contains(.nul) { return "NUL octet in the message" }
        if self.contains(.lineTooLong) { return "a line is longer than 998 octets (RFC 5321 4.5.3.1.6)" }
        return nil
    }
}
