import Testing

@testable import IMAPCore

/// What QRESYNC reports as vanished, from tombstones or, when they do not reach back far
/// enough, from the gaps among the UIDs present (RFC 7162 §3.2.5.2).
@Suite struct IMAPResyncTests {
    static func text(_ set: IMAPSequenceSet) -> String { IMAPResponseEncoder.sequenceSet(set) }

    @Test(
        arguments: [
            // Tombstones known: exactly them, within what the client knows.
            ([4, 9, 10], true, [1, 2, 3, 5], 11, "1:*", 0, "4,9:10"),
            ([4, 9, 10], true, [1, 2, 3, 5], 11, "5:9", 0, "9"),
            ([], true, [1, 2, 3], 4, "1:*", 0, ""),
            // Not known: every gap below UIDNEXT, as ranges.
            ([], false, [2, 5, 6, 9], 12, "1:*", 0, "1,3:4,7:8,10:11"),
            ([], false, [2, 5, 6, 9], 12, "4:7", 0, "4,7"),
            ([], false, [], 4_000_000_000, "1:*", 0, "1:3999999999"),
            ([], false, [], 1, "1:*", 0, ""),
            // A seq-match-data that shows the view right up to UID 5: only gaps above it.
            ([], false, [2, 5, 6, 9], 12, "1:*", 5, "7:8,10:11"),
            ([], false, [2, 5, 6, 9], 12, "1:3,8:20", 8, "10:11"),
            ([], false, [4_294_967_295], 4_294_967_295, "1:*", 0, "1:4294967294"),
        ] as [([UInt32], Bool, [UInt32], UInt32, String, UInt32, String)]
    )
    func vanished(
        tombstones: [UInt32],
        complete: Bool,
        present: [UInt32],
        uidNext: UInt32,
        known: String,
        matchedUpTo: UInt32,
        expected: String
    ) throws {
        guard case .success(let tagged) = IMAPCommandParser.parse(Self.command("a UID FETCH \(known) FLAGS")),
            case .fetch(let set, _, _, _) = tagged.command
        else {
            Issue.record("\(known) does not parse")
            return
        }
        let result = IMAPResync.vanished(
            tombstones: tombstones,
            complete: complete,
            present: present,
            uidNext: uidNext,
            known: set.intervals(last: UInt32.max),
            matchedUpTo: matchedUpTo
        )
        #expect(Self.text(result) == expected)
    }

    static func command(_ text: String) -> IMAPCommandText {
        var framer = IMAPInboundFramer()
        framer.append(.init(string: text + "\r\n"))
        guard case .command(let command) = framer.next() else { fatalError("not a command") }
        return command
    }

    /// RFC 7162 §3.2.5.2's reasoning: a pair whose UID still has its sequence number shows
    /// nothing below it changed; the largest such pair counts.
    @Test func sequenceMatchFindsTheLastPairStillTrue() {
        // Now: UIDs 1, 2, 4, 6, 7 (3 and 5 gone).
        let now: [UInt32: UInt32] = [1: 1, 2: 2, 4: 3, 6: 4, 7: 5]
        #expect(IMAPResync.matchedUpTo(sequences: [1, 2, 3, 5], uids: [1, 2, 3, 6]) { now[$0] } == 2)
        #expect(IMAPResync.matchedUpTo(sequences: [3, 4], uids: [4, 6]) { now[$0] } == 6)
        #expect(IMAPResync.matchedUpTo(sequences: [1], uids: [1, 2]) { now[$0] } == 0, "unequal lists match nothing")
        #expect(IMAPResync.matchedUpTo(sequences: [], uids: []) { now[$0] } == 0)
    }

    @Test func intervalsAreSortedAndMerged() {
        let set = IMAPSequenceSet([
            .init(.number(10), .number(4)), .init(.number(1), .number(2)), .init(.number(3), .number(3)),
            .init(.last, .number(20)),
        ])
        #expect(set.intervals(last: 30) == [1...10, 20...30])
        #expect(IMAPResync.contains([1...10, 20...30], 25))
        #expect(!IMAPResync.contains([1...10, 20...30], 15))
        #expect(set.numbers(last: 30, limit: 21) == Array(1...10) + Array(20...30))
        #expect(set.numbers(last: 30, limit: 20) == nil, "over the limit")
    }
}
