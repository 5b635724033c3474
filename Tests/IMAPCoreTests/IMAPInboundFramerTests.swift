import NIOCore
import Testing

@testable import IMAPCore

/// The framer driven by a scripted session: literals of commands named APPEND are streamed,
/// others up to 8 octets kept in memory, larger ones refused; every command is answered with
/// `resume(.commands)`. Events are written as text:
///
///   `A1 LOGIN {alice} {pw}`  a command, its literals in braces, a streamed one as `{~N}`
///   `?5` / `?5+` / `?~5`     a literal announced (synchronizing, non-synchronizing, literal8)
///   `data:...` `end`         a streamed literal's octets and its end
///   `!start`                 a command too long, with its first octets
///   `X:start`                an unframeable command (the framer closes)
@Suite struct IMAPInboundFramerTests {
    static func events(_ pieces: [String], limits: IMAPLimits = Self.smallLimits) -> [String] {
        var framer = IMAPInboundFramer(limits: limits)
        var result: [String] = []
        for piece in pieces {
            framer.append(ByteBuffer(string: piece))
            while let event = framer.next() {
                switch event {
                case .command(let command):
                    result.append(Self.render(command))
                    framer.resume(.commands)
                case .literal(let announcement):
                    let mark = (announcement.binary ? "~" : "") + "\(announcement.size)"
                    result.append("?" + mark + (announcement.synchronizing ? "" : "+"))
                    let text = Self.render(announcement.command)
                    if text.contains("APPEND") {
                        framer.decide(.stream)
                    } else if framer.fitsInMemory(announcement) && announcement.size <= 8 {
                        framer.decide(.inMemory)
                    } else {
                        framer.decide(.refuse)
                    }
                case .literalData(let bytes): result.append("data:" + String(buffer: bytes))
                case .literalEnd: result.append("end")
                case .commandTooLong(let start): result.append("!" + String(buffer: start))
                case .unframeable(let start): result.append("X:" + String(buffer: start))
                case .line(let line): result.append("line:" + (line.map { String(buffer: $0) } ?? "!"))
                }
            }
        }
        return result
    }

    static var smallLimits: IMAPLimits {
        var limits = IMAPLimits()
        limits.lineLength = 32
        limits.inlineLiteralSize = 16
        limits.commandSize = 48
        limits.literals = 3
        return limits
    }

    static func render(_ command: IMAPCommandText) -> String {
        command.parts.map { part in
            switch part {
            case .text(let text): return String(buffer: text)
            case .literal(let bytes, let binary): return "{" + (binary ? "~:" : "") + String(buffer: bytes) + "}"
            case .streamedLiteral(let size, _): return "{~\(size)}"
            }
        }.joined()
    }

    @Test(arguments: [
        // Lines at CRLF only; a bare LF or CR stays inside for the parser to refuse.
        (["A1 NOOP\r\n"], ["A1 NOOP"]),
        (["A1 NOOP\r\nA2 LOGOUT\r\n"], ["A1 NOOP", "A2 LOGOUT"]),
        (["A1 NO", "OP\r", "\nA2 LOGOUT\r\n"], ["A1 NOOP", "A2 LOGOUT"]),
        (["A1 NOOP\nA2 LOGOUT\r\n"], ["A1 NOOP\nA2 LOGOUT"]),
        (["\r\n"], [""]),
        // A synchronizing literal in memory, then the rest of the line, then another.
        (["A1 LOGIN {5}\r\n", "alice {2}\r\n", "pw\r\n"], ["?5", "?2", "A1 LOGIN {alice} {pw}"]),
        // LITERAL+: the octets come at once, in the same packet.
        (["A1 LOGIN {5+}\r\nalice {2+}\r\npw\r\nA2 NOOP\r\n"], ["?5+", "?2+", "A1 LOGIN {alice} {pw}", "A2 NOOP"]),
        // A literal's octets are never lines: CRLF and braces inside are data.
        (["A1 LOGIN {6+}\r\na\r\n{1}\r\n"], ["?6+", "A1 LOGIN {a\r\n{1}}"]),
        // An empty literal, and a literal8.
        (["A1 LOGIN {0+}\r\n ~{2+}\r\nxy\r\n"], ["?0+", "?~2+", "A1 LOGIN {} {~:xy}"]),
        // APPEND's message is streamed, then the command ends (its text comes last).
        (
            ["A1 APPEND INBOX {11+}\r\nhello ", "world\r\nA2 NOOP\r\n"],
            ["?11+", "data:hello ", "data:world", "end", "A1 APPEND INBOX {~11}", "A2 NOOP"]
        ),
        // A refused synchronizing literal was never sent: the next line is the next command.
        (["A1 LOGIN {50}\r\nA2 NOOP\r\n"], ["?50", "A2 NOOP"]),
        // A refused non-synchronizing literal is read and dropped, and the rest of its command
        // with it (which announces one more): nothing of it is taken as a command.
        (["A1 LOGIN {9+}\r\nA3 LOGOUT x {3+}\r\nA4 y\r\nA2 NOOP\r\n"], ["?9+", "A2 NOOP"]),
        // Not an announcement: braces not at the end, no digits, no opening brace.
        (["A1 X {5}y\r\n"], ["A1 X {5}y"]),
        (["A1 X {}\r\n"], ["A1 X {}"]),
        (["A1 X 5}\r\n"], ["A1 X 5}"]),
        (["A1 X {+}\r\n"], ["A1 X {+}"]),
        (["12345}\r\n"], ["12345}"]),
    ])
    func frames(pieces: [String], expected: [String]) {
        #expect(Self.events(pieces) == expected)
    }

    /// The limits: lines, commands, literals per command. What is over a limit is reported once
    /// and discarded as it comes, literals it announced included.
    @Test(arguments: [
        // A line of 33 octets with its CRLF (limit 32), and one that never seems to end.
        (["A1 NOOP 890123456789012345678901\r\nA2 NOOP\r\n"], ["!A1 NOOP 890123456789012345678901", "A2 NOOP"]),
        (
            ["A1 ", String(repeating: "x", count: 100), String(repeating: "y", count: 100), "\r\nA2 NOOP\r\n"],
            ["!A1 " + String(repeating: "x", count: 60), "A2 NOOP"]
        ),
        // An over-long line that announces a non-synchronizing literal: its octets are skipped.
        (
            ["A1 " + String(repeating: "x", count: 40) + " {8+}\r\nA9 BAD\r\n\r\nA2 NOOP\r\n"],
            ["!A1 " + String(repeating: "x", count: 40) + " {8+", "A2 NOOP"]
        ),
        // ... and split anywhere.
        (
            ["A1 " + String(repeating: "x", count: 40), " {8", "+}\r", "\nA9 B", "AD\r\n\r\nA2 NOOP\r\n"],
            ["!A1 " + String(repeating: "x", count: 40), "A2 NOOP"]
        ),
        // An over-long line announcing a synchronizing literal ends its command: the client waits.
        (
            ["A1 " + String(repeating: "x", count: 40) + " {7}\r\nA2 NOOP\r\n"],
            ["!A1 " + String(repeating: "x", count: 40) + " {7}", "A2 NOOP"]
        ),
        // The command's text over 48 octets in all, across literals.
        (
            ["A1 LOGIN {8+}\r\n12345678 {8+}\r\n12345678 0123456789012345678901234567\r\nA2 NOOP\r\n"],
            ["?8+", "?8+", "!A1 LOGIN ", "A2 NOOP"]
        ),
        // More than 3 literals.
        (["A1 X {1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd\r\nA2 NOOP\r\n"], ["?1+", "?1+", "?1+", "!A1 X ", "A2 NOOP"]),
        // A literal whose size is no number64: the stream cannot be followed.
        (["A1 LOGIN {9223372036854775808+}\r\nA2 NOOP\r\n"], ["X:A1 LOGIN "]),
        (["A1 LOGIN {99999999999999999999999}\r\n"], ["X:A1 LOGIN "]),
        (["A1 LOGIN {9223372036854775807}\r\nA2 NOOP\r\n"], ["?9223372036854775807", "A2 NOOP"]),
        (
            [
                "A1 " + String(repeating: "x", count: 40) + " {" + String(repeating: "9", count: 50)
                    + "+}\r\nA2 NOOP\r\n"
            ],
            ["X:A1 " + String(repeating: "x", count: 40) + " {" + String(repeating: "9", count: 19)]
        ),
    ])
    func limits(pieces: [String], expected: [String]) {
        // Compared by prefix where the start is cut at 64 octets.
        let got = Self.events(pieces)
        #expect(got.count == expected.count, "\(got)")
        for (event, wanted) in zip(got, expected) {
            #expect(event.hasPrefix(wanted) || wanted.hasPrefix(event), "\(event) vs \(wanted)")
        }
    }

    /// However the input is cut, the events are the same.
    @Test func everySplitGivesTheSameEvents() {
        let input =
            "A1 LOGIN {5}\r\nalice {2+}\r\npw\r\nA2 APPEND INBOX (\\Seen) {12+}\r\nSubject: x\r\n\r\n"
            + "A3 LOGIN {40+}\r\n" + String(repeating: "z", count: 40) + " rest\r\nA4 X y{30}\r\nA5 NOOP\r\n"
        let whole = Self.events([input])
        #expect(whole.first == "?5" && whole.last == "A5 NOOP", "\(whole)")
        let bytes = Array(input)
        for cut in 1..<bytes.count {
            let pieces = [String(bytes[..<cut]), String(bytes[cut...])]
            #expect(Self.merged(Self.events(pieces)) == Self.merged(whole), "cut at \(cut)")
        }
        let oneByOne = Self.events(bytes.map { String($0) })
        #expect(Self.merged(oneByOne) == Self.merged(whole))
    }

    /// Streamed data may come in any number of pieces: joined for comparison.
    static func merged(_ events: [String]) -> [String] {
        var result: [String] = []
        for event in events {
            if event.hasPrefix("data:"), let last = result.last, last.hasPrefix("data:") {
                result[result.count - 1] = last + event.dropFirst(5)
            } else {
                result.append(event)
            }
        }
        return result
    }

    /// Nothing is read past a command until the session says how: STARTTLS drops what was
    /// sent before the handshake, and whatever more comes until it is done (a command injected
    /// in plaintext is never run).
    @Test func startTLSDropsWhatCameBeforeTheHandshake() {
        var framer = IMAPInboundFramer()
        framer.append(ByteBuffer(string: "A1 STARTTLS\r\nA2 LOGIN bob secret\r\n"))
        #expect(framer.next() == .command(IMAPCommandText([.text(ByteBuffer(string: "A1 STARTTLS"))])))
        #expect(framer.next() == nil && framer.isPaused)
        framer.resume(.startTLS)
        #expect(framer.next() == nil && framer.bufferedBytes == 0)
        framer.append(ByteBuffer(string: "A2 LOGIN bob secret\r\n"))
        #expect(framer.next() == nil && framer.bufferedBytes == 0 && framer.isPaused)
        framer.layerStarted()
        framer.append(ByteBuffer(string: "A3 NOOP\r\n"))
        #expect(framer.next() == .command(IMAPCommandText([.text(ByteBuffer(string: "A3 NOOP"))])))
    }

    /// AUTHENTICATE reads one line per challenge (and IDLE its DONE), within the line limit.
    @Test func linesOfTheirOwn() {
        var framer = IMAPInboundFramer(limits: Self.smallLimits)
        framer.append(ByteBuffer(string: "A1 AUTHENTICATE PLAIN\r\nAGJvYgBzZWNyZXQ=\r\n"))
        _ = framer.next()
        framer.resume(.line)
        #expect(framer.next() == .line(ByteBuffer(string: "AGJvYgBzZWNyZXQ=")))
        framer.resume(.line)
        framer.append(ByteBuffer(string: String(repeating: "A", count: 100) + "\r\n"))
        #expect(framer.next() == .line(nil))
        framer.resume(.commands)
        framer.append(ByteBuffer(string: "A2 NOOP\r\n"))
        #expect(framer.next() == .command(IMAPCommandText([.text(ByteBuffer(string: "A2 NOOP"))])))
    }

    /// Memory stays bounded whatever the client sends: a flood of one endless line, of literal
    /// octets refused, of tiny literals.
    @Test func memoryStaysBounded() {
        var framer = IMAPInboundFramer(limits: Self.smallLimits)
        var reported = 0
        framer.append(ByteBuffer(string: "A1 X "))
        for _ in 0..<1000 {
            framer.append(ByteBuffer(string: String(repeating: "x", count: 1000)))
            while let event = framer.next() {
                if case .commandTooLong = event { reported += 1 }
            }
            #expect(framer.bufferedBytes <= 64)
        }
        framer.append(ByteBuffer(string: "\r\nA2 X {1000000+}\r\n"))
        var refused = false
        while let event = framer.next() {
            if case .commandTooLong = event { reported += 1 }
            if case .literal = event {
                framer.decide(.refuse)
                refused = true
            }
        }
        #expect(reported == 1 && refused)
        for _ in 0..<99 {
            framer.append(ByteBuffer(string: String(repeating: "y", count: 10_000)))
            #expect(framer.next() == nil)
            #expect(framer.bufferedBytes == 0 && framer.isReadingLiteral)
        }
    }

    /// A client whose every read ends mid-line (or in the CR of an endless line) cannot make
    /// the buffer's storage grow with all it sent: what was read is given back.
    @Test func readOctetsAreGivenBack() {
        var framer = IMAPInboundFramer()
        for _ in 0..<60_000 {
            framer.append(ByteBuffer(string: "NOOP\r\nA"))
            while let event = framer.next() {
                if case .command = event { framer.resume(.commands) }
            }
        }
        #expect(framer.bufferCapacity < 200_000, "\(framer.bufferCapacity)")
        var endless = IMAPInboundFramer()
        endless.append(ByteBuffer(string: "A1 " + String(repeating: "x", count: 70_000) + "\r"))
        for _ in 0..<100 {
            endless.append(ByteBuffer(string: String(repeating: "y", count: 65_535) + "\r"))
            #expect(endless.next() == nil)
        }
        #expect(endless.bufferCapacity < 300_000 && endless.bufferedBytes == 1, "\(endless.bufferCapacity)")
        endless.append(ByteBuffer(string: "\nA2 NOOP\r\n"))
        guard case .commandTooLong = endless.next() else {
            Issue.record("the long line was not reported")
            return
        }
        #expect(endless.next() == .command(IMAPCommandText([.text(ByteBuffer(string: "A2 NOOP"))])))
    }

    /// What the framer did is what the session is told: a literal too large for memory is
    /// refused even when the session asked to keep it, so no `+` goes out for it.
    @Test func aLiteralThatDoesNotFitIsRefusedWhateverWasAsked() {
        var framer = IMAPInboundFramer(limits: Self.smallLimits)
        framer.append(ByteBuffer(string: "A1 LOGIN {40}\r\nA2 NOOP\r\n"))
        guard case .literal(let announcement) = framer.next() else {
            Issue.record("no literal")
            return
        }
        #expect(!framer.fitsInMemory(announcement))
        #expect(framer.decide(.inMemory) == .refuse)
        #expect(framer.next() == .command(IMAPCommandText([.text(ByteBuffer(string: "A2 NOOP"))])))
    }

    /// A number no literal can have, in the rest of a command being discarded, is reported
    /// too: the session says BYE rather than wait.
    @Test func anUnframeableLiteralWhileDiscardingIsReported() {
        var framer = IMAPInboundFramer(limits: Self.smallLimits)
        framer.append(
            ByteBuffer(string: "A1 X {20+}\r\n" + String(repeating: "z", count: 20) + " {99999999999999999999+}\r\n")
        )
        guard case .literal = framer.next() else {
            Issue.record("no literal")
            return
        }
        framer.decide(.refuse)
        guard case .unframeable = framer.next() else {
            Issue.record("not reported")
            return
        }
        #expect(framer.isClosed)
    }
}
