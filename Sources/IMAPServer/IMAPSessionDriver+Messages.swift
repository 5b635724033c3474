import IMAPCore
import MailCore
import MailStore
import NIOCore

extension IMAPSessionDriver {
    /// The selected mailbox's changes since the client last heard, and its state now.
    func snapshot(_ account: MailAccount, expunges: Bool) async throws(IMAPFailure) -> ([IMAPResponse], FolderState) {
        guard let selected = self.selected else { throw .bad("no mailbox is selected") }
        let state = try await self.folderState(selected.name, account)
        return (self.update(state, expunges: expunges), state)
    }

    // MARK: FETCH

    func fetch(
        _ tag: String,
        _ set: IMAPSequenceSet,
        _ requested: [IMAPFetchItem],
        uid: Bool,
        _ modifiers: IMAPFetchModifiers,
        account: MailAccount,
        write: Write
    ) async throws(IMAPFailure) -> [IMAPResponse] {
        let (updates, state) = try await self.snapshot(account, expunges: uid)
        var targets = try self.resolve(set, uid: uid)
        guard let selected = self.selected else { throw .bad("no mailbox is selected") }
        // Each item once: `BODY[] BODY[] ...` a thousand times would be a thousand copies.
        var distinct = Set<IMAPFetchItem>()
        // PREVIEW and PREVIEW (LAZY) both asked: one PREVIEW, lazy only if both were.
        let lazy = requested.allSatisfy { item in
            if case .preview(false) = item { return false }
            return true
        }
        var items = requested.map { item in
            if case .preview = item { return IMAPFetchItem.preview(lazy: lazy) }
            return item
        }.filter { distinct.insert($0).inserted }
        if uid && !items.contains(.uid) { items.insert(.uid, at: 0) }
        var vanished: IMAPResponse?
        if let since = modifiers.changedSince {
            // CHANGEDSINCE (RFC 7162 §3.1.4.1): only messages changed since, with their MODSEQ.
            if !items.contains(.modSeq) { items.append(.modSeq) }
            targets.removeAll { (state.message(uid: $0.uid)?.modSeq ?? 0) <= since }
            if modifiers.vanished {
                // QRESYNC's VANISHED modifier (§3.2.6): what left since, within the set.
                let name = selected.name
                let (tombstones, complete) = try await self.call { () throws(MailboxError) in
                    try account.vanished(name, since: since)
                }
                let uids = IMAPResync.vanished(
                    tombstones: tombstones,
                    complete: complete,
                    present: selected.uids,
                    uidNext: state.uidNext,
                    known: set.intervals(last: selected.uids.last ?? 0)
                )
                if !uids.ranges.isEmpty { vanished = .vanished(earlier: true, uids) }
            }
        }
        let needsContent = items.contains { item in
            switch item {
            case .rfc822, .rfc822Header, .rfc822Text, .bodySection, .binary, .binarySize: return true
            default: return false
            }
        }
        // ENVELOPE and BODYSTRUCTURE come from the renderings kept in the index when there are;
        // the structure is read only for a message without them (then they are made and kept).
        let wantsEnvelope = items.contains(.envelope)
        let wantsBodyStructure = items.contains(.bodyStructure)
        let needsStructureAlways = needsContent || items.contains(.body)
        // PREVIEW: whether asked, and whether LAZY (then one not kept yet is NIL).
        var wantsPreview: Bool?
        for item in items {
            if case .preview(let lazy) = item { wantsPreview = (wantsPreview ?? true) && lazy }
        }
        let marksSeen =
            !selected.readOnly
            && items.contains { item in
                switch item {
                case .rfc822, .rfc822Text: return true
                case .bodySection(_, _, let peek), .binary(_, _, let peek): return !peek
                default: return false
                }
            }
        let encoder = self.encoder
        // The updates the view took in go out now, whatever fails later: the client's sequence
        // numbers must follow the view's.
        try await self.send(self.encode(updates + (vanished.map { [$0] } ?? [])), write)
        let condStore = self.session.condStore
        var out = ByteBuffer()
        // Renderings kept, read a chunk of messages at a time; new ones kept at each chunk's end.
        var kept: [UInt32: MailAccount.Renderings] = [:]
        var fresh: [UInt32: MailAccount.Renderings] = [:]
        var chunkEnd = 0
        let chunk = 1_000
        for (offset, (sequence, messageUID)) in targets.enumerated() {
            if (wantsEnvelope || wantsBodyStructure) && offset == chunkEnd {
                try await self.keepRenderings(&fresh, selected.name, account)
                chunkEnd = min(targets.count, offset + chunk)
                let uids = targets[offset..<chunkEnd].map(\.uid)
                let name = selected.name
                kept = try await self.call { () throws(MailboxError) in try account.renderings(name, uids: uids) }
            }
            // Expunged by another session and not yet reported: nothing to send (RFC 9051 §7.5.1).
            guard var message = state.message(uid: messageUID) else { continue }
            var rendered = kept[messageUID] ?? MailAccount.Renderings()
            let needsStructure =
                needsStructureAlways || (wantsEnvelope && rendered.envelope == nil)
                || (wantsBodyStructure && rendered.bodyStructure == nil)
            var addFlags = false
            var addModSeq = false
            var addUID = false
            if marksSeen && !message.flags.system.contains(.seen) {
                let name = selected.name
                let changed = try await self.call { () throws(MailboxError) in
                    try account.setFlags(name, uids: [messageUID], .add, ["\\Seen"])
                }
                if let now = changed.first {
                    message = now
                    self.selected?.told(uid: messageUID, modSeq: now.modSeq)
                    addFlags = !items.contains(.flags)
                    // CONDSTORE: a change of flags is told with its UID and MODSEQ (RFC 7162 §3.1).
                    addModSeq = condStore && !items.contains(.modSeq)
                    addUID = condStore && !items.contains(.uid)
                }
            }
            var content: [UInt8]?
            var structure: MIMEPart?
            if needsContent {
                let name = selected.name
                let read = { @Sendable () throws(MailboxError) in try account.read(name, uid: messageUID) }
                guard let bytes = try await self.call(read) else { continue }
                content = bytes
            }
            if needsStructure {
                structure = try await self.structure(selected.name, uid: messageUID, content: content, account: account)
                guard let structure else { continue }
                if wantsEnvelope && rendered.envelope == nil {
                    rendered.envelope = encoder.rendering(.envelope(IMAPEnvelope(header: structure.header)))
                    if rendered.envelope != nil { fresh[messageUID, default: .init()].envelope = rendered.envelope }
                }
                if wantsBodyStructure && rendered.bodyStructure == nil {
                    rendered.bodyStructure = encoder.rendering(.bodyStructure(structure, extensible: true))
                    if rendered.bodyStructure != nil {
                        fresh[messageUID, default: .init()].bodyStructure = rendered.bodyStructure
                    }
                }
            }
            // Every value is made before any is written (a BINARY that fails must not leave a
            // response half sent); then they are written one by one, and sent whenever 64 KiB
            // are waiting. Values are slices of the message, or parts decoded once each.
            var decoded = DecodedParts(limit: 4 * (content?.count ?? 0) + 1_048_576)
            var values: [IMAPFetchValue] = []
            var preview: String?
            if let lazy = wantsPreview {
                let name = selected.name
                let given = content
                preview = try await self.call { () throws(MailboxError) in
                    try account.preview(name, uid: messageUID, content: given, compute: !lazy)
                }
            }
            for item in items {
                if item == .envelope, let bytes = rendered.envelope {
                    values.append(.rendered(bytes))
                } else if item == .bodyStructure, let bytes = rendered.bodyStructure {
                    values.append(.rendered(bytes))
                } else if let value = try self.value(item, message, content, structure, preview, &decoded) {
                    values.append(value)
                }
            }
            out.writeString("* \(sequence) FETCH (")
            var written = 0
            for value in values {
                if written > 0 { out.writeString(" ") }
                written += 1
                encoder.writeFetchValue(value, into: &out)
                if out.readableBytes >= 65_536 {
                    try await self.send(out, write)
                    out.clear()
                }
            }
            if addFlags {
                if written > 0 { out.writeString(" ") }
                written += 1
                encoder.writeFetchValue(.flags(Self.flags(message.flags)), into: &out)
            }
            if addUID {
                if written > 0 { out.writeString(" ") }
                written += 1
                encoder.writeFetchValue(.uid(message.uid), into: &out)
            }
            if addModSeq {
                if written > 0 { out.writeString(" ") }
                encoder.writeFetchValue(.modSeq(message.modSeq), into: &out)
            }
            out.writeString(")\r\n")
            if out.readableBytes >= 65_536 {
                try await self.send(out, write)
                out.clear()
            }
        }
        try await self.send(out, write)
        try await self.keepRenderings(&fresh, selected.name, account)
        return [.tagged(tag, .ok, nil, "FETCH done")]
    }

    /// Keeps the renderings made since the last call (a failure to keep them is no failure of
    /// the FETCH: they are made again next time).
    private func keepRenderings(
        _ fresh: inout [UInt32: MailAccount.Renderings],
        _ name: String,
        _ account: MailAccount
    ) async throws(IMAPFailure) {
        guard !fresh.isEmpty else { return }
        let renderings = fresh
        fresh = [:]
        let validity = self.selected?.uidValidity
        _ = try? await self.call { () throws(MailboxError) in
            try account.keep(renderings, in: name, uidValidity: validity)
        }
    }

    func send(_ buffer: ByteBuffer, _ write: Write) async throws(IMAPFailure) {
        guard buffer.readableBytes > 0 else { return }
        do {
            try await write(buffer)
        } catch {
            throw IMAPFailure.disconnected
        }
    }

    /// BINARY's decoded parts of one message, each decoded once however it is named (`1`,
    /// `1.1` and `1.1.1` of a single-part message are one part), and no more of them than a few
    /// times the message's size.
    struct DecodedParts {
        let limit: Int
        var parts: [Range<Int>: [UInt8]] = [:]
        var total = 0

        init(limit: Int) {
            self.limit = limit
        }

        /// The part decoded, or nil when there is no such part.
        mutating func decode(
            _ path: [UInt32],
            _ content: [UInt8],
            _ structure: MIMEPart
        ) throws(IMAPFailure) -> [UInt8]? {
            guard !path.isEmpty else { return content }
            guard let part = structure.part(path.map(Int.init)) else { return nil }
            guard part.parts.isEmpty || part.contentType.isMessage else {
                throw .no(.unknownCTE, "BINARY of a multipart is not defined")
            }
            let range = part.bodyStart..<min(part.end, content.count)
            if let known = self.parts[range] { return known }
            guard let bytes = TransferEncoding.decode(content[range], encoding: part.transferEncoding) else {
                throw .no(.unknownCTE, "unknown Content-Transfer-Encoding \(part.transferEncoding)")
            }
            self.total += bytes.count
            guard self.total <= self.limit else { throw .no(.limit, "too many BINARY parts in one FETCH") }
            self.parts[range] = bytes
            return bytes
        }
    }

    /// One item's value; `decoded` keeps each BINARY part decoded once per message.
    private func value(
        _ item: IMAPFetchItem,
        _ message: StoredMessage,
        _ content: [UInt8]?,
        _ structure: MIMEPart?,
        _ preview: String?,
        _ decoded: inout DecodedParts
    ) throws(IMAPFailure) -> IMAPFetchValue? {
        switch item {
        case .uid: return .uid(message.uid)
        case .flags: return .flags(Self.flags(message.flags))
        case .rfc822Size: return .rfc822Size(UInt64(message.size))
        case .internalDate: return .internalDate(IMAPDateTime(unixTime: message.internalDate))
        case .envelope: return structure.map { .envelope(IMAPEnvelope(header: $0.header)) }
        case .bodyStructure: return structure.map { .bodyStructure($0, extensible: true) }
        case .body: return structure.map { .bodyStructure($0, extensible: false) }
        case .rfc822:
            return content.map { .section(item, origin: nil, $0[...]) }
        case .rfc822Header:
            guard let content, let structure else { return nil }
            return .section(item, origin: nil, content[structure.start..<structure.bodyStart])
        case .rfc822Text:
            guard let content, let structure else { return nil }
            return .section(item, origin: nil, content[structure.bodyStart..<structure.end])
        case .bodySection(let section, let partial, _):
            guard let content, let structure else { return nil }
            let bytes = section.content(of: content, structure: structure)
            return .section(item, origin: partial?.offset, bytes.map { partial?.apply(to: $0) ?? $0 })
        case .binary(let part, let partial, _):
            guard let content, let structure else { return nil }
            let bytes = try decoded.decode(part, content, structure)
            return .binary(part: part, origin: partial?.offset, bytes.map { partial?.apply(to: $0[...]) ?? $0[...] })
        case .binarySize(let part):
            guard let content, let structure else { return nil }
            return .binarySize(part: part, UInt64(try decoded.decode(part, content, structure)?.count ?? 0))
        case .modSeq: return .modSeq(message.modSeq)
        case .emailID: return .emailID(message.emailID)
        case .threadID: return .threadID(nil)  // no threads: NIL, as RFC 8474 §5.2 allows
        case .preview: return .preview(preview)
        }
    }

    /// A message's MIME structure, as the store keeps it (computed when it first saw the message).
    func structure(
        _ folder: String,
        uid: UInt32,
        content: [UInt8]?,
        account: MailAccount
    ) async throws(IMAPFailure)
        -> MIMEPart?
    {
        try await self.call { () throws(MailboxError) in try account.structure(folder, uid: uid, content: content) }
    }

    // MARK: STORE

    func store(
        _ tag: String,
        _ set: IMAPSequenceSet,
        _ store: IMAPStore,
        uid: Bool,
        account: MailAccount
    )
        async throws(IMAPFailure) -> [IMAPResponse]
    {
        guard let selected = self.selected else { throw .bad("no mailbox is selected") }
        guard !selected.readOnly else { throw .no(.readOnly, "the mailbox was opened with EXAMINE") }
        let targets = try self.resolve(set, uid: uid)
        let change: MailAccount.FlagChange
        switch store.operation {
        case .add: change = .add
        case .remove: change = .remove
        case .replace: change = .replace
        }
        let names = store.flags.map(\.name)  // the parser refuses \Recent
        let uids = targets.map(\.uid)
        let name = selected.name
        let unchangedSince = store.unchangedSince
        let (changed, modified) = try await self.call { () throws(MailboxError) in
            try account.setFlags(name, uids: uids, change, names, unchangedSince: unchangedSince)
        }
        let condStore = self.session.condStore
        if store.silent {
            for message in changed { self.selected?.told(uid: message.uid, modSeq: message.modSeq) }
        }
        // The refresh reports each changed message's flags (its MODSEQ moved); unchanged ones
        // in the set are reported too, as RFC 9051 §6.4.6 asks, unless .SILENT. With CONDSTORE
        // even .SILENT tells each changed message's new MODSEQ (RFC 7162 §3.1.3).
        let (updates, state) = try await self.snapshot(account, expunges: uid)
        var responses = updates
        guard let view = self.selected else { throw .bad("no mailbox is selected") }
        if store.silent && condStore {
            for message in changed {
                guard let current = view.sequenceNumber(of: message.uid) else { continue }
                responses.append(
                    .fetch(current, uid ? [.uid(message.uid), .modSeq(message.modSeq)] : [.modSeq(message.modSeq)])
                )
            }
        }
        if !store.silent {
            let skipped = Set(changed.map(\.uid)).union(modified)
            for messageUID in uids where !skipped.contains(messageUID) {
                guard let message = state.message(uid: messageUID), let current = view.sequenceNumber(of: messageUID)
                else { continue }
                responses.append(.fetch(current, view.flagValues(message)))
            }
        }
        // The messages a conditional STORE left alone, by UID or sequence number as it was asked.
        let numbers = uid ? modified.sorted() : modified.compactMap { view.sequenceNumber(of: $0) }.sorted()
        let code: IMAPResponseCode? = numbers.isEmpty ? nil : .modified(IMAPSequenceSet(ascending: numbers))
        return responses + [.tagged(tag, .ok, code, numbers.isEmpty ? "STORE done" : "STORE done, some were modified")]
    }

    // MARK: SEARCH

    /// Each key is a pass over each message's text: a command of thousands is refused.
    static let maximumSearchKeys = 100

    func search(
        _ tag: String,
        _ search: IMAPSearch,
        uid: Bool,
        account: MailAccount
    ) async throws(IMAPFailure)
        -> [IMAPResponse]
    {
        if let charset = search.charset, !["UTF-8", "US-ASCII"].contains(charset.uppercased()) {
            throw .no(.badCharset(["UTF-8", "US-ASCII"]), "search in UTF-8 or US-ASCII")
        }
        if search.returnOptions?.contains(.save) == true { throw .bad("SEARCHRES (SAVE) is not supported") }
        guard IMAPSearchEvaluator.count(search.keys) <= Self.maximumSearchKeys else {
            throw .bad("more than \(Self.maximumSearchKeys) search keys")
        }
        let (updates, state) = try await self.snapshot(account, expunges: uid)
        guard let selected = self.selected else { throw .bad("no mailbox is selected") }
        let evaluator = IMAPSearchEvaluator(keys: search.keys, mailbox: selected)
        var results: [UInt32] = []
        var highest: UInt64 = 0
        // Keys that need no reading decide first; the messages that pass them and need reading
        // are read and judged a chunk at a time, in one turn on the account's threads each.
        let name = selected.name
        var waiting: [(number: UInt32, candidate: IMAPSearchEvaluator.Message)] = []
        func judge() async throws(IMAPFailure) {
            guard !waiting.isEmpty else { return }
            let batch = waiting
            waiting = []
            let headerOnly = evaluator.needsOnlyKeptHeader
            let matched = try await self.call { () throws(MailboxError) -> Set<UInt32> in
                let candidates = Dictionary(batch.map { ($0.candidate.uid, $0.candidate) }, uniquingKeysWith: { $1 })
                var matched = Set<UInt32>()
                var unread = batch.map(\.candidate.uid)
                if headerOnly {
                    // The header fields kept in the index stand for the message; only a message
                    // without them is read.
                    let kept = try account.keptHeaders(name, uids: unread)
                    unread.removeAll { uid in
                        guard let header = kept[uid], let candidate = candidates[uid] else { return false }
                        if evaluator.matches(candidate, content: IMAPSearchEvaluator.Content(message: header)) {
                            matched.insert(uid)
                        }
                        return true
                    }
                }
                try account.forEach(in: name, uids: unread) { uid, bytes in
                    guard let candidate = candidates[uid] else { return }
                    if evaluator.matches(candidate, content: IMAPSearchEvaluator.Content(message: bytes)) {
                        matched.insert(uid)
                    }
                }
                return matched
            }
            for entry in batch where matched.contains(entry.candidate.uid) {
                results.append(entry.number)
                highest = max(highest, entry.candidate.modSeq)
            }
        }
        for (index, messageUID) in selected.uids.enumerated() {
            guard let message = state.message(uid: messageUID) else { continue }
            let candidate = IMAPSearchEvaluator.Message(
                sequence: UInt32(index + 1),
                uid: messageUID,
                flags: Self.flags(message.flags),
                size: UInt64(message.size),
                internalDate: message.internalDate,
                modSeq: message.modSeq,
                emailID: message.emailID
            )
            let number = uid ? messageUID : UInt32(index + 1)
            if evaluator.needsContent {
                guard !evaluator.rejectsWithoutContent(candidate) else { continue }
                waiting.append((number, candidate))
                if waiting.count >= 256 { try await judge() }
            } else if evaluator.matches(candidate, content: nil) {
                results.append(number)
                highest = max(highest, message.modSeq)
            }
        }
        try await judge()
        // CONDSTORE: a search by MODSEQ says the highest MODSEQ among the messages found.
        let modSeq = IMAPSearchEvaluator.usesModSeq(search.keys) && !results.isEmpty ? highest : nil
        var responses = updates
        if search.returnOptions != nil || self.session.rev2 {
            let options = search.returnOptions.flatMap { $0.isEmpty ? nil : $0 } ?? [.all]
            responses.append(
                .esearch(
                    tag: tag,
                    uid: uid,
                    min: options.contains(.min) ? results.first : nil,
                    max: options.contains(.max) ? results.last : nil,
                    count: options.contains(.count) ? UInt32(results.count) : nil,
                    all: options.contains(.all) ? IMAPSequenceSet(ascending: results) : nil,
                    modSeq: modSeq
                )
            )
        } else {
            responses.append(.search(results, modSeq: modSeq))
        }
        return responses + [.tagged(tag, .ok, nil, "SEARCH done")]
    }

    // MARK: COPY, MOVE

    func copy(
        _ tag: String,
        _ set: IMAPSequenceSet,
        to destination: IMAPMailboxName,
        uid: Bool,
        move: Bool,
        account: MailAccount
    ) async throws(IMAPFailure) -> [IMAPResponse] {
        guard let selected = self.selected else { throw .bad("no mailbox is selected") }
        if move && selected.readOnly { throw .no(.readOnly, "the mailbox was opened with EXAMINE") }
        let uids = try self.resolve(set, uid: uid).map(\.uid)
        let target = try self.storeName(destination)
        let source = selected.name
        if !move {
            // A COPY adds what it copies to the account's usage; a MOVE (a rename) adds nothing,
            // and so is never refused for the quota: moving to Trash is how room is made.
            let state = try await self.folderState(source, account)
            try await self.checkQuota(
                account,
                adding: UInt64(uids.reduce(0) { $0 + (state.message(uid: $1)?.size ?? 0) })
            )
        }
        let result: (uidValidity: UInt32, uids: [(UInt32, UInt32)])
        do throws(IMAPFailure) {
            result = try await self.call { () throws(MailboxError) in
                move
                    ? try account.move(uids: uids, from: source, to: target)
                    : try account.copy(uids: uids, from: source, to: target)
            }
        } catch {
            throw Self.tryCreate(error, target)
        }
        let code: IMAPResponseCode? =
            result.uids.isEmpty
            ? nil
            : .copyUID(
                validity: result.uidValidity,
                from: IMAPSequenceSet(ascending: result.uids.map(\.0)),
                to: IMAPSequenceSet(ascending: result.uids.map(\.1))
            )
        guard move else {
            return try await self.refreshed(account, expunges: true) + [.tagged(tag, .ok, code, "COPY done")]
        }
        // RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs.
        var responses: [IMAPResponse] = []
        if let code { responses.append(.untagged(.ok, code, "moved")) }
        return responses + (try await self.refreshed(account, expunges: true)) + [.tagged(tag, .ok, nil, "MOVE done")]
    }

    /// A destination that does not exist: `NO [TRYCREATE]` (RFC 9051 §6.3.12, §6.4.7).
    static func tryCreate(_ error: IMAPFailure, _ folder: String) -> IMAPFailure {
        error.code == .nonexistent ? .no(.tryCreate, "no mailbox \(Self.displayName(folder))") : error
    }

    // MARK: APPEND

    func append(
        _ tag: String,
        _ append: IMAPAppend,
        upload: AppendUpload?,
        account: MailAccount
    )
        async throws(IMAPFailure) -> [IMAPResponse]
    {
        let folder = try self.storeName(append.mailbox)
        guard append.size <= self.session.configuration.appendLimit else {
            throw .no(.tooBig, "the message is larger than APPENDLIMIT")
        }
        try await self.checkQuota(account, adding: append.size)
        let flags = append.flags.map(\.name)  // the parser refuses \Recent
        let date = append.internalDate?.unixTime
        let stored: (uidValidity: UInt32, uid: UInt32)
        do throws(IMAPFailure) {
            if let message = append.message {
                stored = try await self.call { () throws(MailboxError) in
                    try account.append(folder, message: message, flags: flags, internalDate: date)
                }
            } else if let upload {
                if let failure = upload.failure { throw IMAPFailure(failure) }
                stored = try await self.call { () throws(MailboxError) in
                    try account.append(folder, upload: upload, flags: flags, internalDate: date)
                }
            } else {
                throw .bad("APPEND without its message")
            }
        } catch {
            throw Self.tryCreate(error, folder)
        }
        return try await self.refreshed(account, expunges: true)
            + [.tagged(tag, .ok, .appendUID(validity: stored.uidValidity, uid: stored.uid), "APPEND done")]
    }
}
