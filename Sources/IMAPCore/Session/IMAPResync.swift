/// What QRESYNC (RFC 7162 §3.2) computes from a client's memory of a mailbox and the
/// mailbox now: which UIDs the client must hear are gone. Pure, so it is tested without a store.
public enum IMAPResync {
    /// The UIDs to report in `VANISHED (EARLIER)`, as ranges.
    ///
    /// - Parameters:
    ///   - tombstones: the UIDs the store knows left since the client's MODSEQ, ascending.
    ///   - complete: whether `tombstones` is all of them; when not, every UID the client may know
    ///     (within `known`, below `uidNext`) that is not in `present` is reported, as §3.2.5.2
    ///     allows: a client ignores UIDs it never had. The answer is then as long as the
    ///     mailbox has gaps, never as long as the UIDs they span.
    ///   - present: the UIDs in the mailbox now, ascending.
    ///   - known: the client's `known-uids` (or the set of UID FETCH), as merged intervals.
    ///   - matchedUpTo: a UID at and below which the client's view is known to be right (from its
    ///     `seq-match-data`), 0 when nothing is known.
    public static func vanished(
        tombstones: [UInt32],
        complete: Bool,
        present: [UInt32],
        uidNext: UInt32,
        known: [ClosedRange<UInt32>],
        matchedUpTo: UInt32 = 0
    ) -> IMAPSequenceSet {
        if complete { return IMAPSequenceSet(ascending: tombstones.filter { Self.contains(known, $0) }) }
        var ranges: [IMAPSequenceSet.Range] = []
        var index = 0
        for interval in known {
            guard matchedUpTo < UInt32.max, uidNext > 1 else { break }
            let low = max(interval.lowerBound, matchedUpTo + 1)
            let high = min(interval.upperBound, uidNext - 1)
            guard low <= high else { continue }
            while index < present.count && present[index] < low { index += 1 }
            // Walk the gaps between present UIDs within [low, high].
            var next = low
            while next <= high {
                if index < present.count && present[index] <= high {
                    let uid = present[index]
                    if uid > next { ranges.append(.init(.number(next), .number(uid - 1))) }
                    index += 1
                    if uid == UInt32.max { break }
                    next = max(next, uid + 1)
                } else {
                    ranges.append(.init(.number(next), .number(high)))
                    break
                }
            }
        }
        return IMAPSequenceSet(ranges)
    }

    /// The highest UID the client's `seq-match-data` shows its view right up to: the largest
    /// pair (sequence number, UID) whose UID still has that sequence number. No message below it
    /// can have gone (sequence numbers would have moved) and none can have come (UIDs ascend).
    /// `sequenceOf` gives a UID's sequence number now.
    public static func matchedUpTo(
        sequences: [UInt32],
        uids: [UInt32],
        sequenceOf: (UInt32) -> UInt32?
    ) -> UInt32 {
        guard sequences.count == uids.count else { return 0 }
        var best: UInt32 = 0
        for (sequence, uid) in zip(sequences, uids) where sequenceOf(uid) == sequence { best = max(best, uid) }
        return best
    }

    public static func contains(_ intervals: [ClosedRange<UInt32>], _ value: UInt32) -> Bool {
        var low = 0
        var high = intervals.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if intervals[middle].contains(value) { return true }
            if intervals[middle].lowerBound > value { high = middle - 1 } else { low = middle + 1 }
        }
        return false
    }
}

extension IMAPSequenceSet {
    /// The set as sorted, merged intervals; `*` is `last`.
    public func intervals(last: UInt32) -> [ClosedRange<UInt32>] {
        var intervals = self.ranges.map { range -> ClosedRange<UInt32> in
            func value(_ bound: Bound) -> UInt32 {
                if case .number(let number) = bound { return number }
                return last
            }
            let (a, b) = (value(range.from), value(range.to))
            return min(a, b)...max(a, b)
        }
        intervals.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for interval in intervals {
            if let previous = merged.last, UInt64(interval.lowerBound) <= UInt64(previous.upperBound) + 1 {
                merged[merged.count - 1] = previous.lowerBound...max(previous.upperBound, interval.upperBound)
            } else {
                merged.append(interval)
            }
        }
        return merged
    }
}
