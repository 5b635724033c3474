import NIOCore
import SMTPCore
import Testing

/// `SMTPInboundFramer.isTransferringMessage`: the stretch `timeouts.data_total` bounds, from the
/// 354's continuation (or the first BDAT) to the end of the message, across the commands between
/// BDAT chunks, and ended by anything else.
struct SMTPInboundFramerTests {
    /// Feeds `input`, answering every event that wants a reply with `continuation(event)`, and
    /// returns `isTransferringMessage` after each event.
    static func transferring(
        _ input: String,
        continuation: (SMTPInboundFramer.Event) -> SMTPInboundFramer.Continuation = { _ in .commands }
    ) -> [Bool] {
        var framer = SMTPInboundFramer(limits: SMTPLimits())
        framer.append(ByteBuffer(string: input))
        var states: [Bool] = []
        while let event = framer.next() {
            if event.expectsReply { framer.replySent(then: continuation(event)) }
            states.append(framer.isTransferringMessage)
        }
        return states
    }

    @Test func dataIsATransferFromThe354ToTheEnd() {
        let states = Self.transferring("DATA\r\nhello\r\n.\r\nNOOP\r\n") { event in
            if case .command(.success(.data)) = event { return .messageData }
            return .commands
        }
        // DATA (answered 354: transferring); the content came with its end, so by the time it is
        // handed on the transfer is over; the end; NOOP.
        #expect(states == [true, false, false, false])
        var framer = SMTPInboundFramer(limits: SMTPLimits())
        framer.append(ByteBuffer(string: "DATA\r\n"))
        _ = framer.next()
        framer.replySent(then: .messageData)
        framer.append(ByteBuffer(string: "part of a line"))
        _ = framer.next()
        #expect(framer.isTransferringMessage, "until the end of data comes")
    }

    @Test func aRefusedDataIsNoTransfer() {
        #expect(Self.transferring("DATA\r\nNOOP\r\n") == [false, false])
    }

    @Test func bdatChunksAreOneTransferUntilTheLastChunkEnds() {
        let input = "BDAT 2\r\nab" + "BDAT 2\r\ncd" + "BDAT 1 LAST\r\ne" + "NOOP\r\n"
        #expect(
            Self.transferring(input) == [
                true, true, true,  // BDAT 2, its data, its end: between chunks, still transferring
                true, true, true,
                true, true, false,  // the LAST chunk's end ends it
                false,
            ]
        )
    }

    @Test func anyOtherCommandEndsAChunkedTransfer() {
        #expect(Self.transferring("BDAT 2\r\nabRSET\r\n") == [true, true, true, false])
        #expect(Self.transferring("BDAT 2\r\nabQUIT\r\n") == [true, true, true, false])
        #expect(Self.transferring("BDAT 2\r\nabBDAT x\r\n") == [true, true, true, false], "an unframeable chunk")
    }
}
