import NIOCore
import NIOEmbedded
import NIOSupport
import SMTPCore
import Testing

@testable import SMTPServer

/// Counts `read()` calls that reach the head of the pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    func read(context: ChannelHandlerContext) {
        self.reads += 1
        context.read()
    }
}

@Suite struct SMTPFramingHandlerTests {
    let channel: EmbeddedChannel
    let loop: EmbeddedEventLoop
    let counter = ReadCounter()

    init() throws {
        self.loop = EmbeddedEventLoop()
        self.channel = EmbeddedChannel(loop: self.loop)
        try self.channel.pipeline.syncOperations.addHandler(self.counter)
        try self.channel.pipeline.syncOperations.addHandler(
            SMTPFramingHandler(limits: SMTPLimits(), timeouts: .init(command: .seconds(300), data: .seconds(60)))
        )
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        self.reply(220)  // the greeting: the session starts with it
        _ = try self.written()
    }

    func send(_ text: String) throws {
        try self.channel.writeInbound(ByteBuffer(string: text))
    }

    func events() throws -> [String] {
        var result: [String] = []
        while let element = try self.channel.readInbound(as: SMTPServerInbound.self) {
            switch element {
            case .event(.command(.success(let command))): result.append(command.verb)
            case .event(.command(.failure(let error))): result.append("error \(error.reply.code)")
            case .event(.commandTooLong): result.append("too long")
            case .event(.messageData(let data)): result.append("data \(String(buffer: data).debugDescription)")
            case .event(.messageEnd(let defects)): result.append("end \(defects.rawValue)")
            case .event(.chunkData(let data)): result.append("chunk \(String(buffer: data).debugDescription)")
            case .event(.chunkEnd): result.append("chunk end")
            case .event(.unframeableChunk(let reply)): result.append("unframeable \(reply.code)")
            case .event(.saslResponse(let line)): result.append("sasl \(line.map { String(buffer: $0) } ?? "too long")")
            case .timedOut: result.append("timeout")
            case .shutdownRequested: result.append("shutdown")
            case .tlsEstablished(let info): result.append("tls \(info)")
            }
        }
        return result
    }

    /// A reply as the connection task writes it; `messageOpen` as the session would say (true
    /// after a 354 and between BDAT chunks).
    func reply(
        _ code: Int,
        then continuation: SMTPInboundFramer.Continuation = .commands,
        messageOpen: Bool = false
    ) {
        // As NIOAsyncChannel's writer does: write and flush without waiting for the write (a held
        // flush would never complete a waited-for promise).
        self.channel.write(
            SMTPServerOutbound.reply(
                SMTPReply(code, EnhancedStatusCode(UInt8(code / 100), 0, 0), "x"),
                then: continuation,
                messageOpen: messageOpen
            ),
            promise: nil
        )
        self.channel.flush()
    }

    func written() throws -> String {
        var text = ""
        while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func pipelinedRepliesGoOutInOneFlush() throws {
        try self.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nNOOP\r\n")
        #expect(try self.events() == ["MAIL", "RCPT", "NOOP"])
        self.reply(250)
        self.reply(250)
        #expect(try self.written() == "", "held while a reply is still due")
        self.reply(251)
        #expect(try self.written() == "250 2.0.0 x\r\n250 2.0.0 x\r\n251 2.0.0 x\r\n")
    }

    /// A pipelined backlog is handed on in turns: 256 events, then the rest after the next read
    /// from the socket or a pause, so one client cannot keep its event loop from doing I/O.
    @Test func aLongPipelinedBacklogIsHandedOnInTurns() throws {
        try self.send(String(repeating: "NOOP\r\n", count: 600))
        #expect(try self.events().count == SMTPFramingHandler.eventsPerTurn)
        for _ in 0..<SMTPFramingHandler.eventsPerTurn { self.reply(250) }
        #expect(try self.events().isEmpty, "the rest waits for the next turn")
        self.loop.advanceTime(by: SMTPFramingHandler.turnPause)
        #expect(try self.events().count == SMTPFramingHandler.eventsPerTurn, "after the pause")
        try self.send("RSET\r\n")
        #expect(try self.events().count == 600 - 2 * SMTPFramingHandler.eventsPerTurn + 1, "a read starts a turn")
    }

    @Test func dataPausesFramingUntilThe354() throws {
        try self.send("DATA\r\nhello\r\n.\r\nQUIT\r\n")
        #expect(try self.events() == ["DATA"])
        self.reply(354, then: .messageData, messageOpen: true)
        #expect(try self.written() == "354 3.0.0 x\r\n")
        #expect(try self.events() == ["data \"hello\\r\\n\"", "end 0", "QUIT"])
    }

    @Test func refusedDataKeepsReadingCommands() throws {
        try self.send("DATA\r\nNOOP\r\n")
        #expect(try self.events() == ["DATA"])
        self.reply(503)
        #expect(try self.events() == ["NOOP"])
    }

    @Test func startTLSWithoutACertificateCloses() throws {
        try self.send("STARTTLS\r\n")
        #expect(try self.events() == ["STARTTLS"])
        self.reply(220, then: .startTLS)
        #expect(!self.channel.isActive)
    }

    @Test func saslResponsesAreLinesNotCommands() throws {
        try self.send("AUTH PLAIN\r\nQUIT\r\n")
        #expect(try self.events() == ["AUTH"])
        self.reply(334, then: .saslResponse)
        #expect(try self.events() == ["sasl QUIT"])
        self.reply(535)
        try self.send("\(String(repeating: "x", count: 20_000))\r\nNOOP\r\n")
        #expect(try self.events() == ["too long", "NOOP"])
    }

    @Test func bdatChunkIsFramedAtOnce() throws {
        try self.send("BDAT 5 LAST\r\nQUIT\r\nNOOP\r\n")
        #expect(try self.events() == ["BDAT", "chunk \"QUIT\\r\"", "chunk end", "error 500"])
    }

    @Test func closeContinuationClosesAfterTheReplyIsWritten() throws {
        try self.send("QUIT\r\nNOOP\r\n")
        #expect(try self.events() == ["QUIT"])
        self.reply(221, then: .close)
        #expect(try self.written() == "221 2.0.0 x\r\n")
        #expect(!self.channel.isActive)
        #expect(try self.events() == [])
    }

    @Test func idleTimeoutFiresOnlyWhileWaitingForTheClient() throws {
        try self.send("NOOP\r\n")
        #expect(try self.events() == ["NOOP"])
        // A reply is due: the server is working, no timer.
        self.loop.advanceTime(by: .seconds(400))
        #expect(try self.events() == [])
        self.reply(250)
        self.loop.advanceTime(by: .seconds(299))
        #expect(try self.events() == [])
        self.loop.advanceTime(by: .seconds(1))
        #expect(try self.events() == ["timeout"])
    }

    /// Until the greeting is written the server owes the client a reply: a session task slow to
    /// start (a busy machine) does not time the client out.
    @Test func theIdleTimerStartsWithTheGreeting() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(
            SMTPFramingHandler(limits: SMTPLimits(), timeouts: .init(command: .seconds(300)))
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        loop.advanceTime(by: .seconds(400))
        #expect(try channel.readInbound(as: SMTPServerInbound.self) == nil)
        #expect(channel.isActive)
        channel.write(
            SMTPServerOutbound.reply(SMTPReply(220, nil, "hello"), then: .commands, messageOpen: false),
            promise: nil
        )
        channel.flush()
        loop.advanceTime(by: .seconds(299))
        #expect(try channel.readInbound(as: SMTPServerInbound.self) == nil)
        loop.advanceTime(by: .seconds(1))
        guard case .timedOut = try channel.readInbound(as: SMTPServerInbound.self) else {
            Issue.record("no timeout 300 s after the greeting")
            return
        }
    }

    @Test func partialCommandLinesDoNotResetTheTimer() throws {
        self.loop.advanceTime(by: .seconds(200))
        try self.send("MAIL FROM:<")
        self.loop.advanceTime(by: .seconds(100))
        #expect(try self.events() == ["timeout"])
    }

    @Test func dataTimeoutAppliesWhileReadingAMessage() throws {
        try self.send("DATA\r\n")
        _ = try self.events()
        self.reply(354, then: .messageData, messageOpen: true)
        try self.send("some")
        self.loop.advanceTime(by: .seconds(59))
        try self.send(" more")
        self.loop.advanceTime(by: .seconds(59))
        #expect(try self.events() == ["data \"some\"", "data \" more\""])
        self.loop.advanceTime(by: .seconds(1))
        #expect(try self.events() == ["timeout"])
    }

    @Test func shutdownRequestBecomesAnEvent() throws {
        self.channel.pipeline.fireUserInboundEventTriggered(SMTPShutdownRequest())
        #expect(try self.events() == ["shutdown"])
    }

    @Test func readingStopsWhilePausedWithAFullBuffer() throws {
        try self.send("DATA\r\n")
        _ = try self.events()
        let before = self.counter.reads
        try self.send(String(repeating: "x", count: SMTPFramingHandler.pausedBufferLimit))
        self.channel.read()
        #expect(self.counter.reads == before, "read held while paused and full")
        self.reply(354, then: .messageData, messageOpen: true)
        #expect(self.counter.reads == before + 1, "the held read is released")
    }

    @Test func aClientThatStopsReadingIsDropped() throws {
        try self.send("NOOP\r\n")
        _ = try self.events()
        self.channel.isWritable = false
        self.channel.pipeline.fireChannelWritabilityChanged()
        self.loop.advanceTime(by: .seconds(299))
        #expect(self.channel.isActive)
        self.channel.isWritable = true
        self.channel.pipeline.fireChannelWritabilityChanged()
        self.loop.advanceTime(by: .seconds(10))
        #expect(self.channel.isActive, "writable again: the stall timer is off")
        self.channel.isWritable = false
        self.channel.pipeline.fireChannelWritabilityChanged()
        self.loop.advanceTime(by: .seconds(300))
        #expect(!self.channel.isActive)
    }

    /// The stall timer runs whenever the socket is unwritable, also when held replies (a batch
    /// of pipelined commands) are what filled it: before, that case flushed and started no timer,
    /// and a client that never read kept its connection for ever.
    @Test func aStallWithHeldRepliesIsTimedToo() throws {
        try self.send("NOOP\r\nNOOP\r\n")
        #expect(try self.events() == ["NOOP", "NOOP"])
        self.reply(250)  // held: the second reply is still due
        #expect(try self.written() == "")
        self.channel.isWritable = false
        self.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try self.written() == "250 2.0.0 x\r\n", "held replies go out at once")
        self.loop.advanceTime(by: .seconds(299))
        #expect(self.channel.isActive)
        self.loop.advanceTime(by: .seconds(1))
        #expect(!self.channel.isActive, "closed after the command timeout of unwritability")
    }

    /// A closing reply that cannot be written (the client does not read) does not keep the
    /// connection: after `ConnectionClosing.grace` it is reset anyway.
    @Test func aClosingReplyThatCannotGoOutStillCloses() throws {
        try self.send("QUIT\r\n")
        _ = try self.events()
        // An outbound handler that never completes writes: the socket is full.
        try self.channel.pipeline.syncOperations.addHandler(WriteSwallower(), position: .first)
        self.reply(221, then: .close)
        #expect(self.channel.isActive)
        self.loop.advanceTime(by: ConnectionClosing.grace)
        #expect(!self.channel.isActive)
    }

    /// `timeouts.data_total` bounds the whole transfer, however steadily its octets arrive.
    @Test func theWholeTransferIsBounded() throws {
        try self.send("DATA\r\n")
        _ = try self.events()
        self.reply(354, then: .messageData, messageOpen: true)
        // One octet every 50 s: each resets the 60 s data timer, none the 30-minute transfer limit.
        var elapsed = 0
        var events: [String] = []
        while elapsed < 2000, !events.contains("timeout") {
            try self.send("x")
            self.loop.advanceTime(by: .seconds(50))
            elapsed += 50
            events += try self.events()
        }
        #expect(events.filter { $0 == "timeout" }.count == 1)
        #expect(elapsed == 1800, "timed out with the 36th octet's wait, at 30 minutes")
        self.loop.advanceTime(by: ConnectionClosing.grace)
        #expect(!self.channel.isActive, "and closed, whether the 421 could be written or not")
    }

    /// Between BDAT chunks the transfer goes on whatever commands come (a NOOP every few minutes
    /// must not reset it); a reply that says no message is open any more (after RSET) ends it.
    @Test func commandsBetweenChunksDoNotResetTheTransferLimit() throws {
        var elapsed = 0
        var events: [String] = []
        while elapsed < 2000, !events.contains("timeout") {
            try self.send("BDAT 1\r\nx")
            events += try self.events()
            self.reply(250, messageOpen: true)  // the chunk's 250: the message stays open
            try self.send("NOOP\r\n")
            events += try self.events()
            self.reply(250, messageOpen: true)
            self.loop.advanceTime(by: .seconds(50))
            elapsed += 50
            events += try self.events()
        }
        #expect(events.filter { $0 == "timeout" }.count == 1)
        #expect(elapsed == 1800)
    }

    /// The deadline does not cut off a message whose content is all in and whose 250 is due (it
    /// is being checked and stored): that time is the server's, and a reset then could lose a
    /// 250 for a stored message. The reply that closes the message ends the transfer.
    @Test func theTransferLimitWaitsForTheServersAnswer() throws {
        try self.send("DATA\r\n")
        _ = try self.events()
        self.reply(354, then: .messageData, messageOpen: true)
        for _ in 0..<35 {  // an octet every 50 s: 1,750 s of the 1,800
            try self.send("x")
            self.loop.advanceTime(by: .seconds(50))
        }
        try self.send("\r\n.\r\n")
        #expect(try self.events().last == "end 0")
        self.loop.advanceTime(by: .seconds(60))  // storing takes long; the deadline passes
        #expect(try self.events().isEmpty)
        #expect(self.channel.isActive)
        self.reply(250, messageOpen: false)
        self.loop.advanceTime(by: .seconds(120))
        #expect(try self.events().isEmpty, "no transfer once the message is answered")
        #expect(self.channel.isActive)
    }

    @Test func aReplyWithNoMessageOpenEndsTheTransfer() throws {
        try self.send("BDAT 1\r\nx")
        _ = try self.events()
        self.reply(250, messageOpen: true)
        self.loop.advanceTime(by: .seconds(200))
        try self.send("RSET\r\n")
        _ = try self.events()
        self.reply(250, messageOpen: false)
        for _ in 0..<20 {
            try self.send("NOOP\r\n")
            _ = try self.events()
            self.reply(250)
            self.loop.advanceTime(by: .seconds(200))
        }
        #expect(try self.events().isEmpty, "no transfer after RSET: no transfer timeout")
        #expect(self.channel.isActive)
    }
}

/// Takes writes and never completes them, as a socket whose buffer stays full.
final class WriteSwallower: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var promises: [EventLoopPromise<Void>] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let promise { self.promises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {}

    func handlerRemoved(context: ChannelHandlerContext) {
        for promise in self.promises { promise.fail(ChannelError.ioOnClosedChannel) }
    }
}
