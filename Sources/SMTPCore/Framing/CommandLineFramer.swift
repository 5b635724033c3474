import NIOCore

/// Splits command input into lines at CRLF, and only at CRLF, with a length limit.
///
/// `NIOExtras.LineBasedFrameDecoder` splits at a bare LF and has no limit; neither is acceptable
/// for SMTP, where a bare LF splitting one line into two commands is a smuggling vector and an
/// endless line is a memory attack. A line over the limit is discarded up to its CRLF and
/// reported once as `.tooLong`, so the session answers it and goes on; memory stays bounded by
/// the limit whatever the client sends.
public struct CommandLineFramer: Sendable {
    public enum Frame: Hashable, Sendable {
        /// A line without its CRLF. It may still contain a bare CR or LF, which the parser refuses.
        case line(ByteBuffer)
        /// A line longer than the limit, already discarded.
        case tooLong
    }

    /// Maximum line length, CRLF included.
    public let maximumLength: Int
    private var discarding = false
    /// How far `buffer` was already searched for LF, so a slow client costs O(n), not O(n²).
    private var scanned = 0

    public init(maximumLength: Int) {
        precondition(maximumLength >= 2)
        self.maximumLength = maximumLength
    }

    /// Forgets partial-line state; called when the input stops being command lines.
    public mutating func reset() {
        self.discarding = false
        self.scanned = 0
    }

    /// Takes the next frame off the front of `buffer`, or nil when more input is needed.
    public mutating func next(from buffer: inout ByteBuffer) -> Frame? {
        let view = buffer.readableBytesView
        var searchStart = view.startIndex + self.scanned
        var terminator: Int?
        while let lf = view[searchStart...].firstIndex(of: 0x0A) {
            if lf > view.startIndex, view[lf - 1] == 0x0D {
                terminator = lf
                break
            }
            searchStart = lf + 1
        }
        guard let terminator else {
            if self.discarding || view.count >= self.maximumLength {
                // Too long: even a CRLF arriving next would end the line past the limit. Drop all
                // but a trailing CR, which may be the first half of the CRLF that ends the line.
                let keep = view.last == 0x0D ? 1 : 0
                buffer.moveReaderIndex(forwardBy: view.count - keep)
                self.discarding = true
                self.scanned = 0
            } else {
                self.scanned = view.count
            }
            return nil
        }
        let length = terminator + 1 - view.startIndex
        self.scanned = 0
        if self.discarding || length > self.maximumLength {
            buffer.moveReaderIndex(forwardBy: length)
            self.discarding = false
            return .tooLong
        }
        let line = buffer.readSlice(length: length - 2)!
        buffer.moveReaderIndex(forwardBy: 2)
        return .line(line)
    }
}
