import MailCore
import NIOCore
import Testing

@testable import IMAPCore

/// `* n FETCH (...)` as RFC 9051's examples write it; section octets always inside the response.
@Suite struct IMAPFetchResponseTests {
    static func fetch(_ number: UInt32, _ values: [IMAPFetchValue]) -> String {
        var out = ByteBuffer()
        IMAPResponseEncoder(utf8: false).writeFetch(number, values, into: &out)
        return String(decoding: out.readableBytesView, as: UTF8.self)
    }

    static let date = IMAPDateTime(year: 1996, month: 7, day: 17, hour: 2, minute: 44, second: 25, zone: -420)

    @Test func flagsDatesSizesAndUIDs() {
        #expect(
            Self.fetch(12, [.flags([.seen]), .internalDate(Self.date), .rfc822Size(4286), .uid(17)])
                == "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 UID 17)\r\n"
        )
        let early = IMAPDateTime(year: 2026, month: 1, day: 5, hour: 9, minute: 3, second: 0, zone: 330)
        #expect(Self.fetch(1, [.internalDate(early)]) == "* 1 FETCH (INTERNALDATE \" 5-Jan-2026 09:03:00 +0530\")\r\n")
        #expect(Self.fetch(2, [.flags([])]) == "* 2 FETCH (FLAGS ())\r\n")
    }

    /// Numbers and flags are written straight into the buffer: the same text as before.
    @Test(arguments: [0, 9, 10, 4_294_967_295, UInt64.max])
    func numbersAreDecimal(value: UInt64) {
        var out = ByteBuffer()
        IMAPResponseEncoder.writeDecimal(value, into: &out)
        #expect(String(decoding: out.readableBytesView, as: UTF8.self) == String(value))
        #expect(
            Self.fetch(UInt32(truncatingIfNeeded: value), [.modSeq(value)]).hasSuffix(" FETCH (MODSEQ (\(value)))\r\n")
        )
    }

    @Test func flagsThatAreNoAtomsAreMadeOnes() {
        let flags = [IMAPFlag("\\"), .seen, IMAPFlag("$A(b)"), IMAPFlag("(){}"), IMAPFlag("\\\\x"), IMAPFlag("$Junk")]
        #expect(Self.fetch(3, [.flags(flags), .uid(0)]) == "* 3 FETCH (FLAGS (\\Seen $Ab } \\x $Junk) UID 0)\r\n")
    }

    @Test func sections() {
        let fields = IMAPFetchItem.bodySection(
            IMAPSection(text: .headerFields(["DATE", "FROM"])),
            partial: nil,
            peek: true
        )
        #expect(
            Self.fetch(2, [.section(fields, origin: nil, ArraySlice("Date: x\r\n\r\n".utf8))])
                == "* 2 FETCH (BODY[HEADER.FIELDS (DATE FROM)] {11}\r\nDate: x\r\n\r\n)\r\n"
        )
        let partial = IMAPFetchItem.bodySection(
            IMAPSection(part: [1, 2], text: .mime),
            partial: IMAPPartial(offset: 10, length: 4),
            peek: false
        )
        #expect(
            Self.fetch(3, [.section(partial, origin: 10, ArraySlice("abcd".utf8))])
                == "* 3 FETCH (BODY[1.2.MIME]<10> {4}\r\nabcd)\r\n"
        )
        #expect(
            Self.fetch(4, [.section(.bodySection(IMAPSection(part: [9]), partial: nil, peek: false), origin: nil, nil)])
                == "* 4 FETCH (BODY[9] NIL)\r\n"
        )
        #expect(
            Self.fetch(5, [.section(.rfc822Header, origin: nil, ArraySlice("a: b\r\n\r\n".utf8))])
                == "* 5 FETCH (RFC822.HEADER {8}\r\na: b\r\n\r\n)\r\n"
        )
    }

    /// BINARY's octets go as a literal8 when they hold NUL; a section's never hold it.
    @Test func binaryAndNUL() {
        #expect(
            Self.fetch(6, [.binary(part: [1], origin: nil, ArraySlice([0x61, 0x00, 0x62]))])
                == "* 6 FETCH (BINARY[1] ~{3}\r\na\u{0}b)\r\n"
        )
        #expect(
            Self.fetch(7, [.binary(part: [], origin: 0, ArraySlice("ok".utf8)), .binarySize(part: [1, 2], 3)])
                == "* 7 FETCH (BINARY[]<0> {2}\r\nok BINARY.SIZE[1.2] 3)\r\n"
        )
        #expect(
            Self.fetch(8, [.section(.rfc822Text, origin: nil, ArraySlice([0x61, 0x00]))])
                == "* 8 FETCH (RFC822.TEXT {2}\r\na )\r\n"
        )
    }

    @Test func envelopeAndStructureTogether() {
        let message = Array("Subject: hi\r\n\r\nbody\r\n".utf8)
        let part = MIMEPart(message: message)
        #expect(
            Self.fetch(9, [.envelope(IMAPEnvelope(header: part.header)), .bodyStructure(part, extensible: false)])
                == "* 9 FETCH (ENVELOPE (NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL) BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 6 1))\r\n"
        )
    }
}
