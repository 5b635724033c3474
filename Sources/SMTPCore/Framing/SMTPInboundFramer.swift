import NIOCore

/// Turns the server's inbound byte stream into SMTP events: command lines, DATA content, BDAT
/// chunks. It knows just enough of the protocol to find the boundaries, as the IMAP framer knows
/// literals.
///
/// After a command whose reply decides how the following bytes are read (DATA, QUIT, STARTTLS,
/// AUTH, or a BDAT whose size cannot be used) the framer pauses: bytes keep accumulating but are
/// not interpreted until the reply to that command says how to continue. With pipelining, replies
/// to earlier commands are still due when the framer pauses, so the framer counts the events that
/// await a reply (`repliesDue`) and applies a reply's continuation only when it answers the last
/// of them, which is the pausing command. BDAT chunks are framed at once, because RFC 3030 §2
/// requires the server to consume the chunk whatever the reply.
public struct SMTPInboundFramer: Sendable {
    public enum Event: Hashable, Sendable {
        case command(Result<SMTPCommand, SMTPCommandError>)
        case commandTooLong
        /// A BDAT command whose chunk cannot be consumed: unparsable or larger than the message
        /// size limit. The stream is out of sync, so the session must close after the reply.
        case unframeableChunk(SMTPReply)
        case messageData(ByteBuffer)
        case messageEnd(MessageDefects)
        case chunkData(ByteBuffer)
        case chunkEnd
        /// The client's line in answer to a 334 challenge (RFC 4954 §4); nil when it was longer
        /// than the limit (and was discarded).
        case saslResponse(ByteBuffer?)

        /// Whether the session answers this event with exactly one reply. A framed BDAT is
        /// answered at its `chunkEnd`.
        public var expectsReply: Bool {
            switch self {
            case .command(.success(.bdat)): return false
            case .command, .commandTooLong, .unframeableChunk, .messageEnd, .chunkEnd, .saslResponse: return true
            case .messageData, .chunkData: return false
            }
        }
    }

    /// How to read what follows a reply to a command that paused the framer.
    public enum Continuation: Hashable, Sendable {
        case commands
        case messageData
        /// The bytes buffered so far were sent in plaintext before the TLS handshake; they are
        /// dropped (CVE-2011-0411), and commands are read again once TLS is up.
        case startTLS
        /// One line answering a SASL challenge; the framer pauses again after it.
        case saslResponse
        case close
    }

    enum Mode: Sendable {
        case commands
        case paused
        case message(MessageDataDecoder)
        /// The end of data was found together with content; `.messageEnd` is reported next.
        case messageEnding(MessageDefects)
        case chunk(remaining: UInt64)
        case saslLine
        case closed
    }

    public let limits: SMTPLimits
    /// Events handed out that have not been answered yet.
    public private(set) var repliesDue = 0
    private var mode = Mode.commands
    private var buffer = ByteBuffer()
    private var lineFramer: CommandLineFramer
    private var saslFramer: CommandLineFramer

    /// RFC 4954 §4: a SASL response line may be up to 12288 octets, CRLF excluded.
    public static let saslLineLength = 12_288 + 2

    public init(limits: SMTPLimits) {
        self.limits = limits
        self.lineFramer = CommandLineFramer(maximumLength: limits.commandLineLength)
        self.saslFramer = CommandLineFramer(maximumLength: Self.saslLineLength)
    }

    /// Bytes received but not yet turned into events.
    public var bufferedBytes: Int { self.buffer.readableBytes }

    /// True while waiting for the session to say how to read on.
    public var isPaused: Bool {
        if case .paused = self.mode { return true }
        return false
    }

    public var isClosed: Bool {
        if case .closed = self.mode { return true }
        return false
    }

    /// True while reading message content (DATA or a BDAT chunk), where a different timeout applies.
    public var isReadingMessage: Bool {
        switch self.mode {
        case .message, .messageEnding, .chunk: return true
        case .commands, .paused, .saslLine, .closed: return false
        }
    }

    public mutating func append(_ bytes: ByteBuffer) {
        if case .closed = self.mode { return }
        if self.buffer.readableBytes == 0 {
            self.buffer = bytes
        } else {
            var bytes = bytes
            self.buffer.writeBuffer(&bytes)
        }
    }

    /// The next event, or nil when more input (or a reply) is needed.
    public mutating func next() -> Event? {
        let event = self.nextEvent()
        if let event, event.expectsReply { self.repliesDue += 1 }
        return event
    }

    /// Records that the greeting (or the refusal that replaces it) was sent. It answers no
    /// command: a client that talked before it (RFC 5321 §3.1 says wait) has commands due that
    /// the greeting must not be counted against, or the reply to `EHLO` would resume a framer
    /// that a pipelined `STARTTLS` paused, and plaintext sent behind it would be read as
    /// commands (CVE-2011-0411 by way of the greeting). Only `.close` applies.
    public mutating func greetingSent(then continuation: Continuation) {
        if continuation == .close { self.resume(.close) }
    }

    /// Records that a reply to an event was sent, and applies its continuation when it answers
    /// the last event due (`.close` applies at once, whatever is due).
    public mutating func replySent(then continuation: Continuation) {
        if self.repliesDue > 0 { self.repliesDue -= 1 }
        if continuation == .close || self.repliesDue == 0 {
            self.resume(continuation)
        }
    }

    private mutating func nextEvent() -> Event? {
        switch self.mode {
        case .closed, .paused:
            return nil

        case .commands:
            guard let frame = self.lineFramer.next(from: &self.buffer) else {
                self.compact()
                return nil
            }
            switch frame {
            case .tooLong:
                return .commandTooLong
            case .line(let line):
                let parsed = SMTPCommandParser.parse(line.readableBytesView)
                switch parsed {
                case .success(.bdat(let size, _)):
                    guard size <= UInt64(self.limits.messageSize) else {
                        self.mode = .paused
                        return .unframeableChunk(.messageTooLarge(limit: self.limits.messageSize))
                    }
                    self.enter(.chunk(remaining: size))
                case .success(.data), .success(.quit), .success(.startTLS), .success(.auth):
                    self.mode = .paused
                case .failure(let error) where Self.isBdat(line):
                    self.mode = .paused
                    return .unframeableChunk(error.reply)
                case .success, .failure:
                    break
                }
                return .command(parsed)
            }

        case .message(var decoder):
            guard self.buffer.readableBytes > 0 else { return nil }
            let (content, finished) = decoder.decode(&self.buffer)
            if finished {
                // Content decoded together with the end is handed over first.
                if let content, content.readableBytes > 0 {
                    self.mode = .messageEnding(decoder.defects)
                    return .messageData(content)
                }
                self.enter(.commands)
                return .messageEnd(decoder.defects)
            }
            self.mode = .message(decoder)
            if let content, content.readableBytes > 0 { return .messageData(content) }
            return nil

        case .messageEnding(let defects):
            self.enter(.commands)
            return .messageEnd(defects)

        case .saslLine:
            guard let frame = self.saslFramer.next(from: &self.buffer) else { return nil }
            self.enter(.paused)
            switch frame {
            case .line(let line): return .saslResponse(line)
            case .tooLong: return .saslResponse(nil)
            }

        case .chunk(let remaining):
            if remaining == 0 {
                self.enter(.commands)
                return .chunkEnd
            }
            guard self.buffer.readableBytes > 0 else { return nil }
            let length = Int(min(UInt64(self.buffer.readableBytes), remaining))
            let slice = self.buffer.readSlice(length: length)!
            self.mode = .chunk(remaining: remaining - UInt64(length))
            return .chunkData(slice)
        }
    }

    /// Applies the decision on a pausing command. `.close` applies at any time; the others only
    /// while paused (a reply to a command that did not pause changes nothing).
    private mutating func resume(_ continuation: Continuation) {
        switch continuation {
        case .close:
            self.mode = .closed
            self.buffer = ByteBuffer()
        case .commands, .messageData, .startTLS, .saslResponse:
            guard self.isPaused else { return }
            switch continuation {
            case .commands:
                self.enter(.commands)
            case .messageData:
                self.enter(
                    .message(
                        MessageDataDecoder(
                            maximumLineLength: self.limits.textLineLength - 2,
                            maximumSize: self.limits.messageSize
                        )
                    )
                )
            case .startTLS:
                self.buffer.clear()
                self.enter(.commands)
            case .saslResponse:
                self.enter(.saslLine)
            case .close:
                break
            }
        }
    }

    private mutating func enter(_ mode: Mode) {
        self.lineFramer.reset()
        self.saslFramer.reset()
        self.mode = mode
    }

    /// Gives memory back once everything buffered has been read.
    private mutating func compact() {
        if self.buffer.readableBytes == 0, self.buffer.capacity > 16_384 {
            self.buffer = ByteBuffer()
        } else if self.buffer.readerIndex > 65_536 {
            self.buffer.discardReadBytes()
        }
    }

    private static func isBdat(_ line: ByteBuffer) -> Bool {
        let view = line.readableBytesView
        guard view.count >= 4 else { return false }
        let verb = view.prefix(4).map { $0 & 0xDF }  // ASCII upper case
        return verb == Array("BDAT".utf8) && (view.count == 4 || view[view.startIndex + 4] == 0x20)
    }
}
