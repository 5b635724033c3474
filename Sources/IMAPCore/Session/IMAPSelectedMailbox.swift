/// What the view needs of a message of the store: its UID, MODSEQ and flags (made only for
/// the messages whose flags the client must hear).
public protocol IMAPMessageState {
    var uid: UInt32 { get }
    var modSeq: UInt64 { get }
    var imapFlags: [IMAPFlag] { get }
}

/// A session's view of its selected mailbox (RFC 9051 §7.5): which message each sequence
/// number means, and what the client has been told. The mailbox itself changes under it (other
/// sessions, deliveries, other programs); `update` compares and says what to tell the client,
/// holding back EXPUNGE while a response may not carry one, so that a sequence number the client
/// uses keeps its meaning until the client may learn it changed.
public struct IMAPSelectedMailbox: Sendable {
    /// One message as the store says it is.
    public struct Message: Hashable, Sendable, IMAPMessageState {
        public var uid: UInt32
        public var modSeq: UInt64
        public var flags: [IMAPFlag]

        public init(uid: UInt32, modSeq: UInt64, flags: [IMAPFlag]) {
            self.uid = uid
            self.modSeq = modSeq
            self.flags = flags
        }

        public var imapFlags: [IMAPFlag] { self.flags }
    }

    public let name: String
    public let readOnly: Bool
    public let uidValidity: UInt32
    public private(set) var uidNext: UInt32
    /// UIDs in sequence order: the message with sequence number n is `uids[n - 1]`.
    public private(set) var uids: [UInt32]
    /// The MODSEQ of each message (same order as `uids`) when the client last heard of its flags.
    private var told: [UInt64]
    /// The mailbox's HIGHESTMODSEQ at the last update: every change moves it, so an update that
    /// finds it the same has nothing to compare.
    private var highestModSeq: UInt64?
    /// Messages gone from the store that the client has not been told of yet.
    public private(set) var pendingExpunges: Set<UInt32> = []
    /// CONDSTORE is on: FETCH responses about flags carry MODSEQ.
    public var condStore = false
    /// QRESYNC is on: messages gone are reported with VANISHED (their UIDs), not EXPUNGE.
    public var qresync = false

    public init(
        name: String,
        readOnly: Bool,
        uidValidity: UInt32,
        uidNext: UInt32,
        highestModSeq: UInt64? = nil,
        uids: [UInt32],
        modSeqs: [UInt64]
    ) {
        precondition(uids.count == modSeqs.count, "one MODSEQ per UID")
        self.name = name
        self.readOnly = readOnly
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModSeq = highestModSeq
        self.uids = uids
        self.told = modSeqs
    }

    public init(
        name: String,
        readOnly: Bool,
        uidValidity: UInt32,
        uidNext: UInt32,
        highestModSeq: UInt64? = nil,
        messages: some Collection<some IMAPMessageState>
    ) {
        self.init(
            name: name,
            readOnly: readOnly,
            uidValidity: uidValidity,
            uidNext: uidNext,
            highestModSeq: highestModSeq,
            uids: messages.map(\.uid),
            modSeqs: messages.map(\.modSeq)
        )
    }

    public var count: UInt32 { UInt32(self.uids.count) }

    /// `update(uidNext:highestModSeq:uids:modSeqs:expunges:flags:)` for a collection of
    /// messages (the tests' model store).
    public mutating func update<Messages: RandomAccessCollection>(
        uidNext: UInt32,
        highestModSeq: UInt64? = nil,
        messages: Messages,
        expunges: Bool
    ) -> [IMAPResponse] where Messages.Element: IMAPMessageState, Messages.Index == Int {
        self.update(
            uidNext: uidNext,
            highestModSeq: highestModSeq,
            uids: messages.map(\.uid),
            modSeqs: messages.map(\.modSeq),
            expunges: expunges
        ) { messages[messages.startIndex + $0].imapFlags }
    }

    /// Takes in the mailbox as it is now (its UIDs ascending and each one's MODSEQ; `flags`
    /// gives the flags of the message at an index of them) and returns the untagged responses
    /// that tell the client: EXPUNGE (only when `expunges` allows, RFC 9051 §7.5.1: never
    /// during FETCH, STORE or SEARCH by sequence number), EXISTS for new messages, and FETCH
    /// FLAGS for flags changed by others. Two passes side by side over integer arrays; one
    /// when only new messages came; none when `highestModSeq` has not moved.
    ///
    /// A view that ends up holding what the store holds keeps the store's arrays rather than
    /// its own equal copies: a thousand sessions idling on one folder then hold one list of
    /// its UIDs, not a thousand.
    public mutating func update(
        uidNext: UInt32,
        highestModSeq: UInt64? = nil,
        uids: [UInt32],
        modSeqs: [UInt64],
        expunges: Bool,
        flags: (Int) -> [IMAPFlag]
    ) -> [IMAPResponse] {
        precondition(uids.count == modSeqs.count, "one MODSEQ per UID")
        if let highestModSeq, highestModSeq == self.highestModSeq, uidNext <= self.uidNext,
            self.pendingExpunges.isEmpty || !expunges
        {
            return []
        }
        if self.pendingExpunges.isEmpty, Self.isPrefix(self.uids, of: uids), Self.isPrefix(self.told, of: modSeqs) {
            // Only arrivals (a delivery, another session's APPEND): one pass of comparisons
            // without branches to speak of, then the store's arrays.
            self.uidNext = max(self.uidNext, uidNext)
            if let highestModSeq { self.highestModSeq = highestModSeq }
            let arrived = uids.count > self.uids.count
            self.uids = uids
            self.told = modSeqs
            return arrived ? [.exists(self.count)] : []
        }
        var responses: [IMAPResponse] = []
        // Messages the view has that the store no longer does.
        var next = 0
        for uid in self.uids {
            while next < uids.count && uids[next] < uid { next += 1 }
            if next == uids.count || uids[next] != uid { self.pendingExpunges.insert(uid) }
        }
        if expunges && !self.pendingExpunges.isEmpty {
            if self.qresync {
                responses.append(.vanished(earlier: false, IMAPSequenceSet(ascending: self.pendingExpunges.sorted())))
            } else {
                // From the highest number down, so each number is still right when it is sent.
                for index in self.uids.indices.reversed() where self.pendingExpunges.contains(self.uids[index]) {
                    responses.append(.expunge(UInt32(index + 1)))
                }
            }
            var keptUIDs: [UInt32] = []
            var keptTold: [UInt64] = []
            keptUIDs.reserveCapacity(self.uids.count)
            keptTold.reserveCapacity(self.uids.count)
            for (uid, modSeq) in zip(self.uids, self.told) where !self.pendingExpunges.contains(uid) {
                keptUIDs.append(uid)
                keptTold.append(modSeq)
            }
            self.uids = keptUIDs
            self.told = keptTold
            self.pendingExpunges = []
        }
        // Flags changed by others, in the messages the view already has.
        next = 0
        for index in self.uids.indices {
            let uid = self.uids[index]
            while next < uids.count && uids[next] < uid { next += 1 }
            guard next < uids.count, uids[next] == uid, self.told[index] != modSeqs[next] else { continue }
            self.told[index] = modSeqs[next]
            responses.append(.fetch(UInt32(index + 1), self.flagValues(uid: uid, modSeq: modSeqs[next], flags(next))))
        }
        // New messages: above the highest UID the view has.
        let highest = self.uids.last ?? 0
        let first = Self.firstIndex(in: uids, atLeast: UInt64(highest) + 1)
        if first < uids.count {
            self.uids += uids[first...]
            self.told += modSeqs[first...]
            responses.append(.exists(self.count))
        }
        self.uidNext = max(self.uidNext, uidNext)
        if let highestModSeq { self.highestModSeq = highestModSeq }
        if self.pendingExpunges.isEmpty && self.uids.count == uids.count {
            // The view holds exactly the store's messages (what it lacked came in above, and
            // UIDs only grow), each told at the store's MODSEQ: share the store's arrays.
            self.uids = uids
            self.told = modSeqs
        }
        return responses
    }

    /// Whether `a` is the start of `b`.
    private static func isPrefix<Element: FixedWidthInteger>(_ a: [Element], of b: [Element]) -> Bool {
        guard a.count <= b.count else { return false }
        return a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var differences: Element = 0  // no early exit: the loop vectorises
                for index in a.indices { differences |= a[index] ^ b[index] }
                return differences == 0
            }
        }
    }

    /// What a FETCH response about a message's flags holds: its UID, flags and, with CONDSTORE,
    /// its MODSEQ.
    public func flagValues(_ message: some IMAPMessageState) -> [IMAPFetchValue] {
        self.flagValues(uid: message.uid, modSeq: message.modSeq, message.imapFlags)
    }

    func flagValues(uid: UInt32, modSeq: UInt64, _ flags: [IMAPFlag]) -> [IMAPFetchValue] {
        self.condStore ? [.uid(uid), .flags(flags), .modSeq(modSeq)] : [.uid(uid), .flags(flags)]
    }

    /// The client has been told of this message's flags (its own STORE answered it).
    public mutating func told(uid: UInt32, modSeq: UInt64) {
        if let number = self.sequenceNumber(of: uid) { self.told[Int(number) - 1] = modSeq }
    }

    /// Messages this session expunged and has already reported (EXPUNGE, MOVE): gone at once.
    public mutating func removeReported(_ uids: Set<UInt32>) {
        let kept = zip(self.uids, self.told).filter { !uids.contains($0.0) }
        self.uids = kept.map(\.0)
        self.told = kept.map(\.1)
        self.pendingExpunges.subtract(uids)
    }

    public func sequenceNumber(of uid: UInt32) -> UInt32? {
        // UIDs ascend with sequence numbers: a binary search.
        let index = Self.firstIndex(in: self.uids, atLeast: UInt64(uid))
        return index < self.uids.count && self.uids[index] == uid ? UInt32(index + 1) : nil
    }

    public enum ResolveError: Error, Hashable, Sendable {
        /// A sequence number past the last message (RFC 9051 §6.4.5 wants BAD for it).
        case noSuchMessage(UInt32)
    }

    /// The messages a set names, as (sequence number, UID), ascending, each once. UIDs that no
    /// message has are left out (RFC 9051 §6.4.8); sequence numbers past the end are an error,
    /// or left out with `clamping` (SEARCH). `*` is the last message (its UID in a UID set); in
    /// an empty mailbox it names none. The ranges are sorted and merged first, so the cost is
    /// that of the ranges and of what they name, however many times they overlap.
    public func resolve(
        _ set: IMAPSequenceSet,
        uid: Bool,
        clamping: Bool = false
    ) throws(ResolveError) -> [(sequence: UInt32, uid: UInt32)] {
        // Inclusive ranges of indices into `uids`.
        var intervals: [(low: Int, high: Int)] = []
        intervals.reserveCapacity(set.ranges.count)
        if uid {
            let last = self.uids.last ?? 0
            for range in set.ranges {
                let bounds = [Self.value(range.from, last: last), Self.value(range.to, last: last)]
                let start = Self.firstIndex(in: self.uids, atLeast: UInt64(bounds.min()!))
                let end = Self.firstIndex(in: self.uids, atLeast: UInt64(bounds.max()!) + 1) - 1
                if start <= end { intervals.append((start, end)) }
            }
        } else {
            let last = self.count
            for range in set.ranges {
                // `*` in an empty mailbox names no message (`FETCH 1:*` there is no error).
                if last == 0 && (range.from == .last || range.to == .last) { continue }
                let low = min(Self.value(range.from, last: last), Self.value(range.to, last: last))
                var high = max(Self.value(range.from, last: last), Self.value(range.to, last: last))
                guard low >= 1 else { throw .noSuchMessage(low) }
                if high > last {
                    guard clamping else { throw .noSuchMessage(high) }
                    high = last
                }
                if low <= high { intervals.append((Int(low) - 1, Int(high) - 1)) }
            }
        }
        intervals.sort { $0.low < $1.low }
        var result: [(sequence: UInt32, uid: UInt32)] = []
        var next = 0
        for interval in intervals {
            let start = max(interval.low, next)
            guard start <= interval.high else { continue }
            for index in start...interval.high { result.append((UInt32(index + 1), self.uids[index])) }
            next = interval.high + 1
        }
        return result
    }

    private static func value(_ bound: IMAPSequenceSet.Bound, last: UInt32) -> UInt32 {
        switch bound {
        case .number(let number): return number
        case .last: return last
        }
    }

    /// The index of the first UID at least `uid` in ascending `uids` (their count when there
    /// is none).
    private static func firstIndex(in uids: [UInt32], atLeast uid: UInt64) -> Int {
        var low = 0
        var high = uids.count
        while low < high {
            let middle = (low + high) / 2
            if UInt64(uids[middle]) < uid { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
