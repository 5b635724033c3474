import NIOCore

/// Turns the server's inbound byte stream into IMAP commands. It knows just enough of the
/// protocol to find where a command ends: lines end at CRLF, and a line ending in a literal's
/// announcement (`{n}`, `{n+}`, `~{n}`, `~{n+}`) goes on after the literal's n octets.
///
/// The session decides what the framer cannot: whether an announced literal is taken in memory,
/// taken as a stream (APPEND's message, which may be large), or refused; and, after each
/// command, how to read on (STARTTLS drops what the client sent before the handshake,
/// AUTHENTICATE reads one SASL line). So the framer pauses after each command and at each
/// announcement, and memory stays bounded by the limits whatever the client sends: an over-long
/// line or command is discarded as it comes, literals it announces included, and reported once.
public struct IMAPInboundFramer: Sendable {
    public enum Event: Hashable, Sendable {
        /// A whole command. The framer pauses until `resume`.
        case command(IMAPCommandText)
        /// A line announced a literal. The framer pauses until `decide`.
        case literal(IMAPLiteralAnnouncement)
        /// Octets of a literal the session takes as a stream.
        case literalData(ByteBuffer)
        /// The streamed literal is complete; the command goes on, and comes as `.command` with a
        /// `.streamedLiteral` part where the octets were.
        case literalEnd
        /// A command over a limit (a line, its size in memory, its number of literals): the rest
        /// of it is discarded as it arrives. `start` holds its first octets, for the tag.
        case commandTooLong(start: ByteBuffer)
        /// A literal whose size is no number (over 2^63 - 1): where the command ends cannot be
        /// known, so the stream cannot be followed. The session says BYE; the framer is closed.
        case unframeable(start: ByteBuffer)
        /// A line the session reads on its own (`resume(.line)`): a response to a SASL challenge,
        /// IDLE's `DONE`; nil when it was over the line limit. The framer pauses until `resume`.
        case line(ByteBuffer?)
    }

    /// How to read on after a command or a SASL line.
    public enum Continuation: Hashable, Sendable {
        case commands
        /// The octets buffered so far were sent in plaintext before the TLS handshake; they are
        /// dropped (as CVE-2011-0411 taught SMTP servers), and so is anything more, until
        /// `layerStarted`.
        case startTLS
        /// The same for COMPRESS (RFC 4978): what was buffered came before the `OK` and is not
        /// compressed; it is dropped, and so is anything more, until `layerStarted`.
        case compress
        /// One line for the session to read on its own (a SASL response, IDLE's `DONE`).
        case line
        case close
    }

    public enum LiteralDecision: Hashable, Sendable {
        /// Read the octets into the command (only when `fitsInMemory`).
        case inMemory
        /// Hand the octets out as `.literalData` as they arrive.
        case stream
        /// Not wanted: a synchronizing literal was never sent, so the command ends here; the
        /// octets of a non-synchronizing one are read and dropped, then the rest of the command.
        case refuse
    }

    enum Mode: Hashable, Sendable {
        case commands
        case paused
        case awaitingDecision(IMAPLiteralAnnouncement)
        case literal(size: UInt64, remaining: UInt64, binary: Bool, stream: Bool)
        /// The octets of a literal in a command being discarded.
        case skipping(remaining: UInt64)
        /// The rest of a command being discarded, through the line that ends it.
        case discarding
        case line
        /// Between STARTTLS's (or COMPRESS's) reply and the new layer in place: nothing is read.
        case awaitingLayer
        case closed
    }

    /// How much of a command's first line `commandTooLong` and `unframeable` carry.
    static let startLength = 64

    public private(set) var limits: IMAPLimits
    private var mode = Mode.commands
    private var buffer = ByteBuffer()
    /// The command being read.
    private var parts: [IMAPCommandText.Part] = []
    private var held = 0
    private var literalCount = 0
    private var literalBytes = ByteBuffer()
    private var lines: IMAPLineScanner

    public init(limits: IMAPLimits = IMAPLimits()) {
        self.limits = limits
        self.lines = IMAPLineScanner(maximumLength: limits.lineLength)
    }

    /// Takes other limits for what a command holds in memory and its literals (larger ones once
    /// the client has logged in); the line length stays what it was made with.
    public mutating func setLimits(commandSize: Int, inlineLiteralSize: Int) {
        self.limits.commandSize = commandSize
        self.limits.inlineLiteralSize = inlineLiteralSize
    }

    /// Octets received and not yet turned into events.
    public var bufferedBytes: Int { self.buffer.readableBytes }

    /// What the buffer holds in memory, read octets included (for the tests of compaction).
    var bufferCapacity: Int { self.buffer.capacity }

    public var isClosed: Bool { self.mode == .closed }

    /// True while waiting for `resume`, `decide` or `layerStarted`. The glue stops reading
    /// from the socket while the framer is paused and `bufferedBytes` is past a line's length:
    /// what a paused framer holds is what the client sent ahead, and it is the glue's to bound.
    public var isPaused: Bool {
        switch self.mode {
        case .paused, .awaitingDecision, .awaitingLayer: return true
        default: return false
        }
    }

    /// True while a literal's octets are being read (a slow client's APPEND, for its timeout).
    public var isReadingLiteral: Bool {
        switch self.mode {
        case .literal, .skipping: return true
        default: return false
        }
    }

    public mutating func append(_ bytes: ByteBuffer) {
        guard self.mode != .closed, self.mode != .awaitingLayer else { return }
        if self.buffer.readableBytes == 0 {
            self.buffer = bytes
        } else {
            var bytes = bytes
            self.buffer.writeBuffer(&bytes)
        }
    }

    /// Whether a literal fits in memory with the rest of its command.
    public func fitsInMemory(_ announcement: IMAPLiteralAnnouncement) -> Bool {
        announcement.size <= UInt64(self.limits.inlineLiteralSize)
            && UInt64(self.held) + announcement.size <= UInt64(self.limits.commandSize)
    }

    /// Answers a `.literal` event, and returns what was done: `.inMemory` for a literal that
    /// does not fit (`fitsInMemory`) is a refusal. The session sends the `+` continuation for a
    /// synchronizing literal taken, the tagged refusal for one refused.
    @discardableResult
    public mutating func decide(_ decision: LiteralDecision) -> LiteralDecision {
        guard case .awaitingDecision(let announcement) = self.mode else { return .refuse }
        switch decision {
        case .inMemory where self.fitsInMemory(announcement):
            self.literalBytes = ByteBuffer()
            self.mode = .literal(
                size: announcement.size,
                remaining: announcement.size,
                binary: announcement.binary,
                stream: false
            )
        case .stream:
            self.mode = .literal(
                size: announcement.size,
                remaining: announcement.size,
                binary: announcement.binary,
                stream: true
            )
        case .inMemory, .refuse:
            self.forgetCommand()
            self.mode = announcement.synchronizing ? .commands : .skipping(remaining: announcement.size)
            return .refuse
        }
        return decision
    }

    /// Answers a `.command` or `.line` event.
    public mutating func resume(_ continuation: Continuation) {
        if continuation == .close {
            self.close()
            return
        }
        guard self.mode == .paused else { return }
        switch continuation {
        case .commands: self.mode = .commands
        case .startTLS, .compress:
            self.buffer = ByteBuffer()
            self.lines.reset()
            self.mode = .awaitingLayer
        case .line: self.mode = .line
        case .close: break
        }
    }

    /// The TLS handshake after STARTTLS is done, or the compression after COMPRESS in place:
    /// commands are read again.
    public mutating func layerStarted() {
        guard self.mode == .awaitingLayer else { return }
        self.mode = .commands
    }

    public mutating func close() {
        self.mode = .closed
        self.buffer = ByteBuffer()
        self.forgetCommand()
    }

    /// The next event, or nil when more input (or the session's answer) is needed.
    public mutating func next() -> Event? {
        defer { self.compact() }
        while true {
            switch self.mode {
            case .closed, .paused, .awaitingDecision, .awaitingLayer:
                return nil
            case .line:
                guard let line = self.lines.next(from: &self.buffer) else { return nil }
                self.mode = .paused
                if case .line(let bytes) = line { return .line(bytes) }
                return .line(nil)
            case .commands:
                guard let line = self.lines.next(from: &self.buffer) else { return nil }
                if let event = self.commandLine(line) { return event }
            case .literal(let size, let remaining, let binary, let stream):
                if remaining == 0 {
                    self.mode = .commands
                    if stream {
                        self.parts.append(.streamedLiteral(size: size, binary: binary))
                        return .literalEnd
                    }
                    self.held += self.literalBytes.readableBytes
                    self.parts.append(.literal(self.literalBytes, binary: binary))
                    self.literalBytes = ByteBuffer()
                    continue
                }
                guard self.buffer.readableBytes > 0 else { return nil }
                let count = Int(min(UInt64(self.buffer.readableBytes), remaining))
                let slice = self.buffer.readSlice(length: count)!
                self.lines.reset()
                self.mode = .literal(size: size, remaining: remaining - UInt64(count), binary: binary, stream: stream)
                if stream { return .literalData(slice) }
                self.literalBytes.writeImmutableBuffer(slice)
            case .skipping(let remaining):
                if remaining == 0 {
                    self.mode = .discarding
                    continue
                }
                guard self.buffer.readableBytes > 0 else { return nil }
                let count = Int(min(UInt64(self.buffer.readableBytes), remaining))
                self.buffer.moveReaderIndex(forwardBy: count)
                self.lines.reset()
                self.mode = .skipping(remaining: remaining - UInt64(count))
            case .discarding:
                guard let line = self.lines.next(from: &self.buffer) else { return nil }
                switch line {
                case .line(let bytes): self.discard(through: bytes.readableBytesView)
                case .tooLong(_, let tail): self.discard(through: tail)
                }
                if self.mode == .closed { return .unframeable(start: ByteBuffer()) }
            }
        }
    }

    /// A line of the command being read: the command complete, a literal announced, or a limit
    /// passed (nil when the line was taken and reading goes on).
    private mutating func commandLine(_ line: IMAPLineScanner.Line) -> Event? {
        let bytes: ByteBuffer
        switch line {
        case .tooLong(let start, let tail):
            let first = self.commandStart(orLine: start)
            self.forgetCommand()
            if case .some(.tooLarge) = LiteralSyntax(endOf: tail) { return self.unframeable(first) }
            self.discard(through: tail)
            return .commandTooLong(start: first)
        case .line(let line):
            bytes = line
        }
        guard let literal = LiteralSyntax(endOf: bytes.readableBytesView) else {
            // The command is complete.
            guard self.held + bytes.readableBytes <= self.limits.commandSize else {
                let first = self.commandStart(orLine: bytes)
                self.forgetCommand()
                return .commandTooLong(start: first)
            }
            self.parts.append(.text(bytes))
            let command = IMAPCommandText(self.parts)
            self.forgetCommand()
            self.mode = .paused
            return .command(command)
        }
        guard case .size(let size, let synchronizing, let binary, let textLength) = literal else {
            return self.unframeable(self.commandStart(orLine: bytes))
        }
        self.literalCount += 1
        guard self.held + textLength <= self.limits.commandSize, self.literalCount <= self.limits.literals else {
            let first = self.commandStart(orLine: bytes)
            self.forgetCommand()
            self.mode = synchronizing ? .commands : .skipping(remaining: size)
            return .commandTooLong(start: first)
        }
        self.held += textLength
        self.parts.append(.text(bytes.getSlice(at: bytes.readerIndex, length: textLength)!))
        let announcement = IMAPLiteralAnnouncement(
            command: IMAPCommandText(self.parts),
            size: size,
            synchronizing: synchronizing,
            binary: binary
        )
        self.mode = .awaitingDecision(announcement)
        return .literal(announcement)
    }

    /// After a line of a command being discarded: a non-synchronizing literal it announced is
    /// skipped and the command goes on; otherwise the command ends with it (a client that
    /// announced a synchronizing literal waits for a `+` that never comes, and takes the tagged
    /// refusal instead).
    private mutating func discard(through line: some Collection<UInt8>) {
        switch LiteralSyntax(endOf: line) {
        case .some(.size(let size, false, _, _)): self.mode = .skipping(remaining: size)
        case .some(.tooLarge): self.mode = .closed
        case .some(.size(_, true, _, _)), .none: self.mode = .commands
        }
    }

    /// Gives memory back: a buffer read to its end is dropped, a long-read one compacted, so
    /// that a client whose reads always end mid-line cannot make it grow with all it sent.
    private mutating func compact() {
        if self.buffer.readableBytes == 0, self.buffer.capacity > 16_384 {
            self.buffer = ByteBuffer()
        } else if self.buffer.readerIndex > 65_536 {
            self.buffer.discardReadBytes()
        }
    }

    private mutating func unframeable(_ start: ByteBuffer) -> Event {
        self.close()
        return .unframeable(start: start)
    }

    /// The first octets of the command being read, or of `line` when it is the first.
    private func commandStart(orLine line: ByteBuffer) -> ByteBuffer {
        var first = line
        if case .text(let text) = self.parts.first { first = text }
        return first.getSlice(at: first.readerIndex, length: min(first.readableBytes, Self.startLength))!
    }

    private mutating func forgetCommand() {
        self.parts = []
        self.held = 0
        self.literalCount = 0
        self.literalBytes = ByteBuffer()
    }
}

/// The end of a line, read as a literal's announcement (RFC 9051 §9: `literal = "{" number64
/// ["+"] "}" CRLF`; RFC 3516: `literal8 = "~{" number64 ["+"] "}" CRLF`). An atom cannot contain
/// `{`, so a line ending this way announces a literal, or is malformed for the parser to say.
enum LiteralSyntax: Hashable {
    /// `textLength`: the octets of the line before the announcement.
    case size(UInt64, synchronizing: Bool, binary: Bool, textLength: Int)
    /// Digits, but more than a number64 can hold.
    case tooLarge

    init?(endOf line: some Collection<UInt8>) {
        // `~{` and 19 digits and `+}` is the longest announcement there is.
        let bytes = Array(line.suffix(40))
        guard bytes.last == UInt8(ascii: "}") else { return nil }
        var index = bytes.count - 2
        let synchronizing = !(index >= 0 && bytes[index] == UInt8(ascii: "+"))
        if !synchronizing { index -= 1 }
        let digitsEnd = index
        while index >= 0, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index -= 1 }
        guard digitsEnd - index > 0 else { return nil }
        guard index >= 0 else {
            // Digits back to the start of what was kept: of a longer line (the tail of an
            // over-long one), a number no literal can have; of a whole line, no literal at all.
            if line.count > bytes.count {
                self = .tooLarge
                return
            }
            return nil
        }
        guard bytes[index] == UInt8(ascii: "{") else { return nil }
        guard let value = Self.number64(bytes[(index + 1)...digitsEnd]) else {
            self = .tooLarge
            return
        }
        let binary = index > 0 && bytes[index - 1] == UInt8(ascii: "~")
        let announcementLength = bytes.count - index + (binary ? 1 : 0)
        self = .size(value, synchronizing: synchronizing, binary: binary, textLength: line.count - announcementLength)
    }

    /// RFC 9051's `number64` (digits, at most 2^63 - 1); nil when the digits say more.
    static func number64(_ digits: some Collection<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            let (times, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = times.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflowed, !carried, sum <= UInt64(Int64.max) else { return nil }
            value = sum
        }
        return value
    }
}
