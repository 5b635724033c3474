import NIOCore

/// Splits input into lines at CRLF, and only at CRLF, with a length limit, as SMTP's
/// `CommandLineFramer` does; and of a line over the limit, discarded as it arrives, it keeps the
/// first octets (for the command's tag) and the last ones, because in IMAP even an over-long line
/// may end by announcing a literal whose octets must not be read as commands.
struct IMAPLineScanner: Sendable {
    enum Line: Hashable, Sendable {
        /// A line without its CRLF; a bare CR or LF stays inside, for the parser to refuse.
        case line(ByteBuffer)
        /// A line over the limit, discarded: its first octets and its last (before the CRLF).
        case tooLong(start: ByteBuffer, tail: [UInt8])
    }

    /// Longer than `LiteralSyntax` looks back (40), so that it can tell a run of digits too long
    /// for a literal's size from a short line.
    static let tailLength = 48
    static let startLength = 64

    /// Longest line, CRLF included.
    let maximumLength: Int
    /// How far the buffer was searched for LF already, so a slow client costs O(n), not O(n²).
    private var scanned = 0
    /// Of the over-long line being discarded, its start and its last octets so far.
    private var overLong: (start: ByteBuffer, tail: [UInt8])?

    init(maximumLength: Int) {
        precondition(maximumLength >= 2)
        self.maximumLength = maximumLength
    }

    /// Forgets where the search was; called when octets were taken off the buffer otherwise.
    mutating func reset() {
        self.scanned = 0
        self.overLong = nil
    }

    mutating func next(from buffer: inout ByteBuffer) -> Line? {
        let view = buffer.readableBytesView
        var searchStart = view.startIndex + min(self.scanned, view.count)
        var terminator: Int?
        while let lf = view[searchStart...].firstIndex(of: 0x0A) {
            if lf > view.startIndex, view[lf - 1] == 0x0D {
                terminator = lf
                break
            }
            searchStart = lf + 1
        }
        guard let terminator else {
            if self.overLong != nil || view.count >= self.maximumLength {
                // Too long already: keep a trailing CR, which may be half of the CRLF to come.
                let keep = view.last == 0x0D ? 1 : 0
                let dropped = view.prefix(view.count - keep)
                var state =
                    self.overLong ?? (
                        buffer.getSlice(at: buffer.readerIndex, length: min(view.count, Self.startLength))!, []
                    )
                state.tail = Array((state.tail + dropped).suffix(Self.tailLength))
                self.overLong = state
                buffer.moveReaderIndex(forwardBy: dropped.count)
                self.scanned = 0
            } else {
                self.scanned = view.count
            }
            return nil
        }
        let length = terminator + 1 - view.startIndex
        defer {
            buffer.moveReaderIndex(forwardBy: length)
            self.scanned = 0
            self.overLong = nil
        }
        let content = view[view.startIndex..<(terminator - 1)]
        if var state = self.overLong {
            state.tail = Array((state.tail + content).suffix(Self.tailLength))
            return .tooLong(start: state.start, tail: state.tail)
        }
        guard length <= self.maximumLength else {
            let start = buffer.getSlice(at: buffer.readerIndex, length: min(content.count, Self.startLength))!
            return .tooLong(start: start, tail: Array(content.suffix(Self.tailLength)))
        }
        return .line(buffer.getSlice(at: buffer.readerIndex, length: content.count)!)
    }
}
