import Testing

@testable import IMAPCore

/// A session's view of its mailbox: sequence numbers keep their meaning until the client may
/// learn otherwise (RFC 9051 §7.5.1).
@Suite struct IMAPSelectedMailboxTests {
    static func message(_ uid: UInt32, _ modSeq: UInt64 = 1, _ flags: [IMAPFlag] = []) -> IMAPSelectedMailbox.Message {
        .init(uid: uid, modSeq: modSeq, flags: flags)
    }

    static func mailbox(_ uids: [UInt32]) -> IMAPSelectedMailbox {
        IMAPSelectedMailbox(
            name: "INBOX",
            readOnly: false,
            uidValidity: 7,
            uidNext: (uids.last ?? 0) + 1,
            messages: uids.map { Self.message($0) }
        )
    }

    @Test func newMessagesAreOneExists() {
        var mailbox = Self.mailbox([1, 2])
        let responses = mailbox.update(uidNext: 5, messages: [1, 2, 3, 4].map { Self.message($0) }, expunges: false)
        #expect(responses == [.exists(4)])
        #expect(mailbox.uids == [1, 2, 3, 4])
    }

    @Test func expungesWaitUntilTheyMayBeSent() throws {
        var mailbox = Self.mailbox([1, 2, 3, 4])
        // 2 and 4 are gone; during a FETCH by sequence number nothing may be said of them.
        var responses = mailbox.update(uidNext: 6, messages: [1, 3, 5].map { Self.message($0) }, expunges: false)
        #expect(responses == [.exists(5)])
        #expect(mailbox.uids == [1, 2, 3, 4, 5], "numbers keep their meaning")
        #expect(try mailbox.resolve(IMAPSequenceSet([.init(.number(4), .number(4))]), uid: false).map(\.uid) == [4])
        // At the next NOOP: from the highest number down, so each is right when sent.
        responses = mailbox.update(uidNext: 6, messages: [1, 3, 5].map { Self.message($0) }, expunges: true)
        #expect(responses == [.expunge(4), .expunge(2)])
        #expect(mailbox.uids == [1, 3, 5])
    }

    @Test func flagChangesByOthersAreFetchResponses() {
        var mailbox = Self.mailbox([1, 2])
        let responses = mailbox.update(
            uidNext: 3,
            messages: [Self.message(1), Self.message(2, 5, [.seen])],
            expunges: true
        )
        #expect(responses == [.fetch(2, [.uid(2), .flags([.seen])])])
        // Told once.
        #expect(
            mailbox.update(uidNext: 3, messages: [Self.message(1), Self.message(2, 5, [.seen])], expunges: true).isEmpty
        )
        // A change this session made and reported itself is not told again.
        mailbox.told(uid: 1, modSeq: 9)
        #expect(
            mailbox.update(
                uidNext: 3,
                messages: [Self.message(1, 9, [.flagged]), Self.message(2, 5, [.seen])],
                expunges: true
            ).isEmpty
        )
    }

    @Test func sequenceSetsAndUIDSets() throws {
        let mailbox = Self.mailbox([3, 5, 9, 10])
        func resolve(_ ranges: [IMAPSequenceSet.Range], uid: Bool) throws -> [UInt32] {
            try mailbox.resolve(IMAPSequenceSet(ranges), uid: uid).map(\.uid)
        }
        #expect(try resolve([.init(.number(2), .last)], uid: false) == [5, 9, 10])
        #expect(try resolve([.init(.last, .number(3))], uid: false) == [9, 10], "either order")
        #expect(try resolve([.init(.number(4), .number(9))], uid: true) == [5, 9], "UIDs no message has are left out")
        #expect(try resolve([.init(.number(11), .last)], uid: true) == [10], "n:* includes the last UID")
        #expect(try resolve([.init(.number(1), .number(1)), .init(.number(1), .number(2))], uid: false) == [3, 5])
        #expect(throws: IMAPSelectedMailbox.ResolveError.noSuchMessage(5)) {
            try mailbox.resolve(IMAPSequenceSet([.init(.number(5), .number(5))]), uid: false)
        }
        let empty = Self.mailbox([])
        #expect(
            try empty.resolve(IMAPSequenceSet([.init(.number(1), .last)]), uid: false).isEmpty,
            "1:* in an empty mailbox"
        )
        #expect(mailbox.sequenceNumber(of: 9) == 3 && mailbox.sequenceNumber(of: 4) == nil)
    }

    @Test func aHugeRangeCostsWhatTheMailboxHolds() throws {
        let mailbox = Self.mailbox([1, 2])
        let set = IMAPSequenceSet([.init(.number(1), .number(4_294_967_295))])
        #expect(try mailbox.resolve(set, uid: true).count == 2)
    }

    /// Many random rounds of changes (flags, expunges, arrivals) against a plain model: after
    /// each update allowed to expunge, the view numbers exactly the store's messages, and it
    /// reported exactly the flags that changed since it last looked.
    @Test(arguments: [1, 2, 3, UInt64.random(in: 4...UInt64.max)])
    func updatesFollowTheStoreExactly(seed: UInt64) {
        var random = SplitMix(seed)
        var store = (1...300).map { Self.message(UInt32($0), 1) }
        var highest: UInt64 = 1
        var nextUID: UInt32 = 301
        // The store's arrays, as the store hands them to every session until the next change.
        var uids = store.map(\.uid)
        var modSeqs = store.map(\.modSeq)
        var view = IMAPSelectedMailbox(
            name: "INBOX",
            readOnly: false,
            uidValidity: 7,
            uidNext: nextUID,
            highestModSeq: highest,
            uids: uids,
            modSeqs: modSeqs
        )
        for _ in 0..<200 {
            let before = highest
            var changed = Set<UInt32>()
            for _ in 0..<Int.random(in: 0...5, using: &random) where !store.isEmpty {
                let index = Int.random(in: 0..<store.count, using: &random)
                highest += 1
                store[index].modSeq = highest
                store[index].flags = [.flagged]
                changed.insert(store[index].uid)
            }
            for _ in 0..<Int.random(in: 0...3, using: &random) where !store.isEmpty {
                highest += 1
                changed.remove(store.remove(at: Int.random(in: 0..<store.count, using: &random)).uid)
            }
            var arrived = 0
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                highest += 1
                store.append(Self.message(nextUID, highest))
                nextUID += 1
                arrived += 1
            }
            let expunges = Bool.random(using: &random)
            if highest != before {
                uids = store.map(\.uid)
                modSeqs = store.map(\.modSeq)
            }
            let responses = view.update(
                uidNext: nextUID,
                highestModSeq: highest,
                uids: uids,
                modSeqs: modSeqs,
                expunges: expunges
            ) { store[$0].flags }
            var told = Set<UInt32>()
            for case .fetch(_, let values) in responses {
                for case .uid(let uid) in values { told.insert(uid) }
            }
            #expect(told == changed, "exactly the changed flags")
            #expect(responses.contains(.exists(view.count)) == (arrived > 0))
            if expunges {
                #expect(view.uids == uids)
                #expect(Self.sameStorage(view.uids, uids), "a view equal to the store shares its arrays")
            }
            // Again without HIGHESTMODSEQ's shortcut: nothing more to say, by comparison or by
            // the shared arrays.
            #expect(
                view.update(uidNext: nextUID, uids: uids, modSeqs: modSeqs, expunges: false) { store[$0].flags }.isEmpty
            )
            #expect(view.update(uidNext: nextUID, highestModSeq: highest, messages: store, expunges: false).isEmpty)
        }
    }

    /// Whether two arrays are one storage (a view sharing the store's, not a copy).
    static func sameStorage(_ a: [UInt32], _ b: [UInt32]) -> Bool {
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { $0.baseAddress == a.baseAddress } }
    }

    /// A generator that replays from its seed (the failing case's seed is in its name).
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(_ seed: UInt64) { self.state = seed }
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
