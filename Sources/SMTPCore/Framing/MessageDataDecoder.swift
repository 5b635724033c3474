import NIOCore

/// Reads the message text after DATA (RFC 5321 §4.1.1.4, §4.5.2): finds the `<CRLF>.<CRLF>` that
/// ends it, removes dot-stuffing, and checks every line, streaming: input of any size passes
/// through with a few bytes of state.
///
/// Only `<CRLF>.<CRLF>` ends the data. Every look-alike (`<LF>.<LF>`, `<CR>.<CR>`, `<LF>.<CR><LF>`,
/// `<CRLF>.<LF>`, ...) is content that carries a defect, so the message is refused when the real
/// end arrives and nothing after the look-alike can ever be read as a command. Once a defect or
/// the size limit is hit the decoder stops producing content (nothing more needs storing) but
/// keeps reading to the real end.
///
/// The data starts at the beginning of a line; the CRLF before the final dot belongs to the content.
public struct MessageDataDecoder: Sendable {
    enum State: Sendable {
        /// At the beginning of a line.
        case lineStart
        /// A "." at the beginning of a line, not yet known to be stuffing or the end.
        case dot
        /// ".<CR>" at the beginning of a line: the end if LF follows.
        case dotCR
        /// Inside a line.
        case text
        /// After a CR inside a line.
        case carriageReturn
    }

    private var state = State.lineStart
    private var lineLength = 0
    /// Content octets so far (stuffing dots not counted).
    public private(set) var size = 0
    public private(set) var defects: MessageDefects = []
    /// Longest line of content, CRLF excluded.
    public let maximumLineLength: Int
    public let maximumSize: Int

    /// - Parameters:
    ///   - maximumLineLength: octets of text in a line, CRLF excluded (998 for RFC 5321's 1000).
    ///   - maximumSize: octets of content.
    public init(maximumLineLength: Int, maximumSize: Int) {
        self.maximumLineLength = maximumLineLength
        self.maximumSize = maximumSize
    }

    /// Consumes input from `buffer`. Returns the content decoded from it (nil when there is none
    /// to keep) and whether the end of data was reached; at the end, `buffer` is left holding
    /// exactly the bytes after `<CRLF>.<CRLF>`.
    public mutating func decode(_ buffer: inout ByteBuffer) -> (content: ByteBuffer?, finished: Bool) {
        var output: ByteBuffer?
        var finished = false
        var consumed = 0
        var state = self.state
        var lineLength = self.lineLength
        var size = self.size
        var defects = self.defects
        let maximumLineLength = self.maximumLineLength
        let maximumSize = self.maximumSize

        buffer.withUnsafeReadableBytes { bytes in
            var runStart = 0
            func flush(upTo end: Int) {
                if end > runStart, defects.isEmpty {
                    if output == nil { output = ByteBuffer() }
                    output!.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<end]))
                }
                runStart = end
            }
            var index = 0
            let count = bytes.count
            byteLoop: while index < count {
                let byte = bytes[index]
                switch state {
                case .lineStart:
                    if byte == 0x2E {
                        flush(upTo: index)
                        runStart = index + 1  // the first dot of a line is never content
                        state = .dot
                        index += 1
                        continue byteLoop
                    }
                    state = .text
                case .dot:
                    if byte == 0x0D {
                        state = .dotCR
                        index += 1
                        continue byteLoop
                    }
                    state = .text
                case .dotCR:
                    if byte == 0x0A {
                        consumed = index + 1
                        finished = true
                        break byteLoop
                    }
                    // ".<CR>x": the CR was content after all, and a bare one.
                    defects.insert(.bareCarriageReturn)
                    size += 1
                    state = .text
                case .text, .carriageReturn:
                    break
                }

                // The byte is content of a line.
                size += 1
                switch state {
                case .carriageReturn:
                    if byte == 0x0A {
                        state = .lineStart
                        lineLength = 0
                    } else if byte == 0x0D {
                        defects.insert(.bareCarriageReturn)
                    } else {
                        defects.insert(.bareCarriageReturn)
                        state = .text
                        lineLength += 1
                    }
                case .text:
                    switch byte {
                    case 0x0D:
                        state = .carriageReturn
                    case 0x0A:
                        defects.insert(.bareLineFeed)
                    case 0x00:
                        defects.insert(.nul)
                        lineLength += 1
                    default:
                        lineLength += 1
                    }
                case .lineStart, .dot, .dotCR:
                    preconditionFailure("handled above")
                }
                if lineLength > maximumLineLength { defects.insert(.lineTooLong) }
                if size > maximumSize { defects.insert(.tooLarge) }
                index += 1
            }
            if finished { return }
            consumed = count
            // A pending ".<CR>" is not content unless something other than LF follows.
            flush(upTo: state == .dotCR ? count - 1 : count)
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        if finished {
            state = .lineStart
        }
        self.state = state
        self.lineLength = lineLength
        self.size = size
        self.defects = defects
        return (defects.isEmpty ? output : nil, finished)
    }
}
