import IMAPCore
import MailStore

extension IMAPSessionDriver {
    static let systemFlags: [IMAPFlag] = [.answered, .flagged, .deleted, .seen, .draft]

    func select(
        _ tag: String,
        _ name: IMAPMailboxName,
        _ options: IMAPSelectOptions,
        readOnly: Bool,
        account: MailAccount,
        write: Write
    ) async throws(IMAPFailure)
        -> [IMAPResponse]
    {
        var responses: [IMAPResponse] = []
        if self.selected != nil {
            // RFC 9051 §6.3.2: the old mailbox is closed (without expunging) whatever happens next.
            self.selected = nil
            self.session.selected(nil)
            responses.append(.untagged(.ok, .closed, "previous mailbox closed"))
        }
        let folder = try self.storeName(name)
        let state = try await self.folderState(folder, account)
        var selected = IMAPSelectedMailbox(
            name: folder,
            readOnly: readOnly,
            uidValidity: state.uidValidity,
            uidNext: state.uidNext,
            highestModSeq: state.highestModSeq,
            uids: state.uids,
            modSeqs: state.modSeqs
        )
        selected.condStore = self.session.condStore
        selected.qresync = self.session.qresync
        self.selected = selected
        self.highestModSeq = state.highestModSeq
        self.session.selected(folder, readOnly: readOnly)
        var keywords: [IMAPFlag] = []
        var seen = Set<IMAPFlag>()
        for message in state.messages {
            for keyword in message.flags.keywords where seen.insert(IMAPFlag(keyword)).inserted {
                keywords.append(IMAPFlag(keyword))
            }
        }
        responses.append(.flags(Self.systemFlags + keywords))
        responses.append(
            .untagged(
                .ok,
                .permanentFlags(readOnly ? [] : Self.systemFlags + keywords, newKeywords: !readOnly),
                readOnly ? "no flags can be changed" : "flags and keywords can be changed"
            )
        )
        responses.append(.exists(selected.count))
        if !self.session.rev2 {
            responses.append(.recent(0))
            if let index = state.messages.firstIndex(where: { !$0.flags.system.contains(.seen) }) {
                responses.append(.untagged(.ok, .unseen(UInt32(index + 1)), "first unseen"))
            }
        }
        responses.append(.untagged(.ok, .uidValidity(state.uidValidity), "UIDs valid"))
        responses.append(.untagged(.ok, .uidNext(state.uidNext), "predicted next UID"))
        // RFC 7162 §3.1.2.1: every mailbox keeps MODSEQs, so every SELECT says the highest
        // (unless CONDSTORE is switched off for the user: a client that chokes on it).
        if self.session.offers("CONDSTORE") {
            responses.append(.untagged(.ok, .highestModSeq(state.highestModSeq), "highest MODSEQ"))
        }
        if self.session.offers("OBJECTID") {
            responses.append(.untagged(.ok, .mailboxID(state.mailboxID), "mailbox id"))
        }
        if self.session.rev2 {
            responses.append(.list(attributes: [], delimiter: ".", name: Self.displayName(folder), lsub: false))
        }
        if let qresync = options.qresync, qresync.uidValidity == state.uidValidity {
            // What SELECT said so far goes out first; the changes follow a thousand at a time.
            try await self.send(self.encode(responses), write)
            responses = []
            try await self.resynchronize(qresync, folder, state, selected, account, write: write)
        }
        responses.append(
            .tagged(tag, .ok, readOnly ? .readOnly : .readWrite, readOnly ? "EXAMINE done" : "SELECT done")
        )
        return responses
    }

    /// QRESYNC's part of SELECT (RFC 7162 §3.2.5): what vanished since the client's MODSEQ, then
    /// the flags of each message changed since, both within the UIDs the client knows.
    func resynchronize(
        _ qresync: IMAPQResync,
        _ folder: String,
        _ state: FolderState,
        _ selected: IMAPSelectedMailbox,
        _ account: MailAccount,
        write: Write
    ) async throws(IMAPFailure) {
        let known = qresync.knownUIDs?.intervals(last: UInt32.max) ?? [1...UInt32.max]
        let since = qresync.modSeq
        var responses: [IMAPResponse] = []
        if since < state.highestModSeq {
            let (tombstones, complete) = try await self.call { () throws(MailboxError) in
                try account.vanished(folder, since: since)
            }
            var matchedUpTo: UInt32 = 0
            if !complete, let match = qresync.sequenceMatch,
                let sequences = match.sequences.numbers(last: selected.count, limit: 100_000),
                let uids = match.uids.numbers(last: UInt32.max, limit: 100_000)
            {
                matchedUpTo = IMAPResync.matchedUpTo(sequences: sequences, uids: uids) {
                    selected.sequenceNumber(of: $0)
                }
            }
            let vanished = IMAPResync.vanished(
                tombstones: tombstones,
                complete: complete,
                present: selected.uids,
                uidNext: state.uidNext,
                known: known,
                matchedUpTo: matchedUpTo
            )
            if !vanished.ranges.isEmpty { responses.append(.vanished(earlier: true, vanished)) }
        }
        for (index, message) in state.messages.enumerated()
        where message.modSeq > since && IMAPResync.contains(known, message.uid) {
            responses.append(.fetch(UInt32(index + 1), selected.flagValues(message)))
            if responses.count >= 1_000 {
                try await self.send(self.encode(responses), write)
                responses = []
            }
        }
        try await self.send(self.encode(responses), write)
    }

    func list(_ list: IMAPListCommand, account: MailAccount, lsub: Bool) async throws(IMAPFailure) -> [IMAPResponse] {
        // `LIST "" ""`: the hierarchy delimiter and root (RFC 9051 §6.3.9).
        if list.patterns.allSatisfy(\.isEmpty) {
            return [.list(attributes: ["\\Noselect"], delimiter: ".", name: "", lsub: lsub)]
        }
        let folders = try await self.call { () throws(MailboxError) in try account.list() }
        let reference = self.patternText(list.reference.bytes)
        // Each pattern is matched against each folder: a few dozen are what clients send.
        var distinct = Set<String>()
        let patterns = list.patterns.map { reference + self.patternText($0) }.filter { distinct.insert($0).inserted }
        guard patterns.count <= 100 else { throw .bad("more than 100 LIST patterns") }
        let subscribedOnly = list.selection.contains(.subscribed)
        let specialOnly = list.selection.contains(.specialUse)
        let returnSubscribed = subscribedOnly || list.returnOptions.contains(.subscribed)
        var statusItems: [IMAPStatusItem]?
        for option in list.returnOptions {
            if case .status(let items) = option { statusItems = items }
        }
        var responses: [IMAPResponse] = []
        for folder in folders {
            let name = Self.displayName(folder.name)
            guard patterns.contains(where: { Self.matches(name, pattern: $0) }) else { continue }
            if subscribedOnly && !folder.subscribed { continue }
            if specialOnly && folder.specialUse == nil { continue }
            var attributes: [String] = []
            if !folder.exists { attributes += ["\\NonExistent", "\\Noselect"] }
            if folder.name == "INBOX" {
                attributes.append("\\Noinferiors")
            } else {
                attributes.append(folder.hasChildren ? "\\HasChildren" : "\\HasNoChildren")
            }
            if returnSubscribed && folder.subscribed { attributes.append("\\Subscribed") }
            if let use = folder.specialUse { attributes.append(use) }
            responses.append(.list(attributes: attributes, delimiter: ".", name: name, lsub: lsub))
            if let statusItems, folder.exists, let state = try? await self.folderState(folder.name, account) {
                responses.append(self.status(folder.name, state, statusItems))
            }
        }
        return responses
    }

    /// A pattern from the client as UTF-8 text (modified UTF-7 decoded for IMAP4rev1 clients).
    func patternText(_ bytes: [UInt8]) -> String {
        if !self.session.utf8, let decoded = ModifiedUTF7.decode(bytes) { return decoded }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// LIST's wildcards: `*` matches anything, `%` anything but the delimiter. INBOX matches
    /// in any case.
    static func matches(_ name: String, pattern: String) -> Bool {
        let name = Array(name.unicodeScalars)
        var pattern = Array(pattern.unicodeScalars)
        if String(String.UnicodeScalarView(pattern.prefix(5))).uppercased() == "INBOX"
            && (pattern.count == 5 || pattern[5] == ".") && String(String.UnicodeScalarView(name.prefix(5))) == "INBOX"
        {
            pattern.replaceSubrange(0..<5, with: "INBOX".unicodeScalars)
        }
        // Matching with a table of what was tried: at most (name × pattern) steps, however many
        // wildcards a pattern holds. Names are at most 200 octets; a pattern over 255 characters
        // matches nothing.
        guard name.count <= 255, pattern.count <= 255 else { return false }
        var memo = [[Bool?]](repeating: [Bool?](repeating: nil, count: pattern.count + 1), count: name.count + 1)
        func match(_ i: Int, _ j: Int) -> Bool {
            if let known = memo[i][j] { return known }
            let result: Bool
            if j == pattern.count {
                result = i == name.count
            } else if pattern[j] == "*" {
                result = match(i, j + 1) || (i < name.count && match(i + 1, j))
            } else if pattern[j] == "%" {
                result = match(i, j + 1) || (i < name.count && name[i] != "." && match(i + 1, j))
            } else {
                result = i < name.count && name[i] == pattern[j] && match(i + 1, j + 1)
            }
            memo[i][j] = result
            return result
        }
        return match(0, 0)
    }

    func status(_ folder: String, _ state: FolderState, _ items: [IMAPStatusItem]) -> IMAPResponse {
        let values = items.map { item -> IMAPStatusValue in
            switch item {
            case .messages: return IMAPStatusValue(item, UInt64(state.messages.count))
            case .uidNext: return IMAPStatusValue(item, UInt64(state.uidNext))
            case .uidValidity: return IMAPStatusValue(item, UInt64(state.uidValidity))
            case .unseen:
                return IMAPStatusValue(item, UInt64(state.messages.count { !$0.flags.system.contains(.seen) }))
            case .deleted:
                return IMAPStatusValue(item, UInt64(state.messages.count { $0.flags.system.contains(.deleted) }))
            case .size: return IMAPStatusValue(item, UInt64(state.messages.reduce(0) { $0 + $1.size }))
            case .recent: return IMAPStatusValue(item, 0)
            case .highestModSeq: return IMAPStatusValue(item, state.highestModSeq)
            case .mailboxID: return IMAPStatusValue(item, text: state.mailboxID)
            case .deletedStorage:
                let octets = state.messages.reduce(0) { $0 + ($1.flags.system.contains(.deleted) ? $1.size : 0) }
                return IMAPStatusValue(item, UInt64(octets + 1023) / 1024)
            }
        }
        return .status(name: Self.displayName(folder), values)
    }
}
