import NIOCore

/// Checks message content that arrives length-delimited (BDAT, RFC 3030) against the same line
/// rules DATA enforces: CRLF line ends only, no NUL, lines of at most 998 octets.
///
/// Without BINARYMIME a BDAT message is still text (RFC 3030 §3); holding it to the rules keeps
/// what Petrel stores, and may later relay over DATA, free of smuggling material.
public struct MessageTextValidator: Sendable {
    private var afterCR = false
    private var lineLength = 0
    public private(set) var defects: MessageDefects = []
    /// Whether the content so far ends with CRLF (or is empty).
    public var endsWithLineBreak: Bool { self.lineLength == 0 && !self.afterCR }
    public let maximumLineLength: Int

    public init(maximumLineLength: Int) {
        self.maximumLineLength = maximumLineLength
    }

    public mutating func inspect(_ content: ByteBuffer) {
        for byte in content.readableBytesView {
            if self.afterCR {
                self.afterCR = false
                if byte == 0x0A {
                    self.lineLength = 0
                    continue
                }
                self.defects.insert(.bareCarriageReturn)
            }
            switch byte {
            case 0x0D: self.afterCR = true
            case 0x0A: self.defects.insert(.bareLineFeed)
            case 0x00: self.defects.insert(.nul)
            default: break
            }
            if byte != 0x0D {
                self.lineLength += 1
                if self.lineLength > self.maximumLineLength { self.defects.insert(.lineTooLong) }
            }
        }
    }

    /// The defects of the whole content; a CR left at the very end is a bare CR.
    public var finalDefects: MessageDefects {
        self.afterCR ? self.defects.union(.bareCarriageReturn) : self.defects
    }
}
