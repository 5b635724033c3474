import MailCore

/// Decides which messages a SEARCH matches (RFC 9051 §6.4.4). Text keys compare decoded text
/// without regard to case: header fields with RFC 2047 words decoded, bodies with their transfer
/// encoding undone and their charset read (UTF-8, US-ASCII, ISO-8859-1/Windows-1252; another
/// charset is read as UTF-8). Dates are days in UTC for the internal date, and the day written in
/// the Date field for the SENT keys.
public struct IMAPSearchEvaluator: Sendable {
    /// What the evaluator knows of one message without reading it.
    public struct Message: Sendable {
        public var sequence: UInt32
        public var uid: UInt32
        public var flags: [IMAPFlag]
        public var size: UInt64
        /// Seconds since 1970.
        public var internalDate: Int64
        public var modSeq: UInt64
        public var emailID: String

        public init(
            sequence: UInt32,
            uid: UInt32,
            flags: [IMAPFlag],
            size: UInt64,
            internalDate: Int64,
            modSeq: UInt64 = 1,
            emailID: String = ""
        ) {
            self.emailID = emailID
            self.sequence = sequence
            self.uid = uid
            self.flags = flags
            self.size = size
            self.internalDate = internalDate
            self.modSeq = modSeq
        }
    }

    /// A message's octets and structure, read once for every key that needs them. Made from
    /// the octets alone, the structure is parsed only if a key needs the body.
    public struct Content: Sendable {
        let message: [UInt8]
        let structure: MIMEPart?

        public init(message: [UInt8], structure: MIMEPart) {
            self.message = message
            self.structure = structure
        }

        public init(message: [UInt8]) {
            self.message = message
            self.structure = nil
        }

        /// The top-level header, whole (the structure keeps only some fields).
        func fullHeader() -> HeaderSection {
            if let structure = self.structure {
                return HeaderSection(parsing: self.message[structure.start..<structure.bodyStart])
            }
            // Up to the first empty line (CRLF CRLF), or all of it.
            var end = self.message.count
            var index = 0
            while index + 3 < self.message.count {
                if self.message[index] == 0x0D && self.message[index + 1] == 0x0A && self.message[index + 2] == 0x0D
                    && self.message[index + 3] == 0x0A
                {
                    end = index + 2
                    break
                }
                index += 1
            }
            return HeaderSection(parsing: self.message[0..<end])
        }
    }

    let keys: [IMAPSearchKey]
    let uids: [IMAPSequenceSet: Set<UInt32>]
    let sequences: [IMAPSequenceSet: Set<UInt32>]

    /// - Parameter mailbox: resolves the UID and sequence sets among the keys.
    public init(keys: [IMAPSearchKey], mailbox: IMAPSelectedMailbox) {
        self.keys = keys
        var uids: [IMAPSequenceSet: Set<UInt32>] = [:]
        var sequences: [IMAPSequenceSet: Set<UInt32>] = [:]
        func collect(_ key: IMAPSearchKey) {
            switch key {
            case .uid(let set):
                uids[set] = Set(((try? mailbox.resolve(set, uid: true)) ?? []).map(\.uid))
            case .sequence(let set):
                // A number past the end matches nothing (not an error, as in FETCH).
                sequences[set] = Set(((try? mailbox.resolve(set, uid: false, clamping: true)) ?? []).map(\.sequence))
            case .not(let inner): collect(inner)
            case .or(let left, let right):
                collect(left)
                collect(right)
            case .and(let inner): inner.forEach(collect)
            default: break
            }
        }
        keys.forEach(collect)
        self.uids = uids
        self.sequences = sequences
    }

    /// How many keys there are, nested ones included (SEARCH bounds it: each costs a pass over
    /// each message's text).
    public static func count(_ keys: [IMAPSearchKey]) -> Int {
        keys.reduce(0) { total, key in
            switch key {
            case .not(let inner): return total + 1 + Self.count([inner])
            case .or(let left, let right): return total + 1 + Self.count([left, right])
            case .and(let inner): return total + 1 + Self.count(inner)
            default: return total + 1
            }
        }
    }

    /// Whether any key is CONDSTORE's MODSEQ (the answer then carries the highest MODSEQ found).
    public static func usesModSeq(_ keys: [IMAPSearchKey]) -> Bool {
        keys.contains { key in
            switch key {
            case .modSeq: return true
            case .not(let inner): return Self.usesModSeq([inner])
            case .or(let left, let right): return Self.usesModSeq([left, right])
            case .and(let inner): return Self.usesModSeq(inner)
            default: return false
            }
        }
    }

    /// Whether the keys that need the message read only top-level header fields the store keeps
    /// apart (FROM, TO, CC, BCC, SUBJECT, the sent dates, HEADER of such a field): then those
    /// fields alone stand for the message's octets.
    public var needsOnlyKeptHeader: Bool {
        func kept(_ key: IMAPSearchKey) -> Bool {
            switch key {
            case .addressOrSubject, .sentBefore, .sentOn, .sentSince: return true
            case .header(let name, _):
                let lower = name.lowercased()
                return lower.hasPrefix("content-") || MIMEPart.keptFields.contains(lower)
            case .body, .text: return false
            case .not(let inner): return kept(inner)
            case .or(let left, let right): return kept(left) && kept(right)
            case .and(let inner): return inner.allSatisfy(kept)
            // Keys that read nothing of the message (each named: a new key must say which it is).
            case .all, .flag, .notFlag, .new, .old, .recent, .before, .on, .since, .larger, .smaller, .uid, .modSeq,
                .emailID, .threadID, .sequence:
                return true
            }
        }
        return self.keys.allSatisfy(kept)
    }

    /// Whether any key needs the message's octets.
    public var needsContent: Bool { self.keys.contains(where: Self.needsContent) }

    static func needsContent(_ key: IMAPSearchKey) -> Bool {
        switch key {
        case .header, .addressOrSubject, .body, .text, .sentBefore, .sentOn, .sentSince: return true
        case .not(let inner): return Self.needsContent(inner)
        case .or(let left, let right): return Self.needsContent(left) || Self.needsContent(right)
        case .and(let inner): return inner.contains(where: Self.needsContent)
        default: return false
        }
    }

    /// Whether a key that needs no reading of the message already fails it (the keys are all
    /// required: one failing is enough); a SEARCH reads only the messages that pass these.
    public func rejectsWithoutContent(_ message: Message) -> Bool {
        var cache = TextCache(content: nil)
        return self.keys.contains { !Self.needsContent($0) && !self.matches($0, message, &cache) }
    }

    /// Whether the message matches every key. `content` is nil when no key needs it (or the
    /// message could not be read, which matches no text key).
    public func matches(_ message: Message, content: Content?) -> Bool {
        var cache = TextCache(content: content)
        return self.keys.allSatisfy { self.matches($0, message, &cache) }
    }

    /// Decoded texts, made at most once per message.
    struct TextCache {
        let content: Content?
        var header: HeaderSection?
        var body: String?

        mutating func fields(_ name: String) -> [String] {
            guard let content else { return [] }
            if self.header == nil { self.header = content.fullHeader() }
            return self.header!.fields.filter { $0.hasName(name) }.map { EncodedWords.decode($0.value).lowercased() }
        }

        mutating func hasField(_ name: String) -> Bool {
            guard let content else { return false }
            if self.header == nil { self.header = content.fullHeader() }
            return self.header!.fields.contains { $0.hasName(name) }
        }

        /// Whether a field named `name` (any field when nil) contains `needle` (lower case) in
        /// its value. An ASCII needle without white space at its ends is looked for in the value's
        /// octets, ASCII letters in any case, when the value has no encoded word and no folding
        /// (nothing decoding or unfolding would change); other values are decoded as for `fields`.
        mutating func fieldContains(_ name: String?, _ needle: String) -> Bool {
            guard let content else { return false }
            if self.header == nil { self.header = content.fullHeader() }
            let octets = Array(needle.utf8)
            let plain =
                !octets.isEmpty && octets.allSatisfy { $0 < 0x80 }
                && ![0x20, 0x09].contains(octets.first!) && ![0x20, 0x09].contains(octets.last!)
            for field in self.header!.fields where name.map(field.hasName) ?? true {
                let value = field.rawValue
                let folded = value.contains { $0 == 0x0A || $0 == 0x0D }
                let encoded = zip(value, value.dropFirst()).contains { $0 == 0x3D && $1 == 0x3F }  // "=?"
                if plain && !folded && !encoded {
                    if ASCIISearch.contains(field.raw, value.startIndex..<value.endIndex, octets) { return true }
                } else if EncodedWords.decode(field.value).lowercased().contains(needle) {
                    return true
                }
            }
            return false
        }

        mutating func bodyText() -> String {
            if let body { return body }
            guard let content else { return "" }
            var texts: [String] = []
            Self.collect(self.structure(content), content.message, into: &texts, top: true)
            let body = texts.joined(separator: "\n").lowercased()
            self.body = body
            return body
        }

        var parsed: MIMEPart?

        mutating func structure(_ content: Content) -> MIMEPart {
            if let structure = content.structure ?? self.parsed { return structure }
            let structure = MIMEPart(message: content.message)
            self.parsed = structure
            return structure
        }

        /// Whether the body's text contains `needle` (lower case). An ASCII needle is looked for
        /// in the octets of each text part that needs no decoding (7bit, 8bit or binary, in
        /// US-ASCII or UTF-8), without making text of them; other parts are decoded as for
        /// `bodyText`.
        mutating func bodyContains(_ needle: String) -> Bool {
            guard let content else { return false }
            let bytes = Array(needle.utf8)
            guard !bytes.isEmpty, bytes.allSatisfy({ $0 < 0x80 }), self.body == nil else {
                return self.bodyText().contains(needle)
            }
            var undecided = false
            func walk(_ part: MIMEPart) -> Bool {
                if !part.parts.isEmpty {
                    if part.contentType.isMessage {
                        undecided = true  // an attached message's header is text too
                        return false
                    }
                    return part.parts.contains { walk($0) }
                }
                guard part.contentType.type == "text" else { return false }
                let charset =
                    part.contentType.parameter("charset")?.lowercased() ?? "us-ascii"
                guard ["7bit", "8bit", "binary"].contains(part.transferEncoding),
                    ["us-ascii", "utf-8"].contains(charset)
                else {
                    undecided = true
                    return false
                }
                return ASCIISearch.contains(
                    content.message,
                    part.bodyStart..<min(part.end, content.message.count),
                    bytes
                )
            }
            if walk(self.structure(content)) { return true }
            return undecided ? self.bodyText().contains(needle) : false
        }

        static func collect(_ part: MIMEPart, _ message: [UInt8], into texts: inout [String], top: Bool) {
            if !part.parts.isEmpty {
                if part.contentType.isMessage, let inner = part.parts.first {
                    // An attached message: its header is text to search too.
                    let header = HeaderSection(parsing: message[inner.start..<inner.bodyStart])
                    texts.append(header.fields.map { EncodedWords.decode($0.value) }.joined(separator: "\n"))
                    Self.collect(inner, message, into: &texts, top: false)
                } else {
                    for child in part.parts { Self.collect(child, message, into: &texts, top: false) }
                }
                return
            }
            guard part.contentType.type == "text" else { return }
            let raw = message[part.bodyStart..<min(part.end, message.count)]
            let decoded = TransferEncoding.decode(raw, encoding: part.transferEncoding) ?? Array(raw)
            let charset = part.contentType.parameter("charset")?.lowercased() ?? "us-ascii"
            texts.append(EncodedWords.text(decoded, charset: charset) ?? String(decoding: decoded, as: UTF8.self))
        }
    }

    private func matches(_ key: IMAPSearchKey, _ message: Message, _ cache: inout TextCache) -> Bool {
        switch key {
        case .all, .old: return true
        case .new, .recent: return false
        case .flag(let flag): return message.flags.contains(flag)
        case .notFlag(let flag): return !message.flags.contains(flag)
        case .header(let name, let value):
            return value.isEmpty ? cache.hasField(name) : cache.fieldContains(name, value.lowercased())
        case .addressOrSubject(let field, let value):
            return cache.fieldContains(field, value.lowercased())
        case .body(let value):
            return cache.bodyContains(value.lowercased())
        case .text(let value):
            let needle = value.lowercased()
            return cache.fieldContains(nil, needle) || cache.bodyContains(needle)
        case .before(let date): return Self.day(message.internalDate) < date.daysSince1970
        case .on(let date): return Self.day(message.internalDate) == date.daysSince1970
        case .since(let date): return Self.day(message.internalDate) >= date.daysSince1970
        case .sentBefore(let date): return Self.sentDay(&cache).map { $0 < date.daysSince1970 } ?? false
        case .sentOn(let date): return Self.sentDay(&cache).map { $0 == date.daysSince1970 } ?? false
        case .sentSince(let date): return Self.sentDay(&cache).map { $0 >= date.daysSince1970 } ?? false
        case .larger(let size): return message.size > size
        case .smaller(let size): return message.size < size
        case .uid(let set): return self.uids[set]?.contains(message.uid) ?? false
        case .modSeq(let modSeq): return message.modSeq >= modSeq
        case .emailID(let id): return message.emailID == id
        case .threadID: return false
        case .sequence(let set): return self.sequences[set]?.contains(message.sequence) ?? false
        case .not(let inner): return !self.matches(inner, message, &cache)
        case .or(let left, let right):
            return self.matches(left, message, &cache) || self.matches(right, message, &cache)
        case .and(let inner): return inner.allSatisfy { self.matches($0, message, &cache) }
        }
    }

    static func day(_ seconds: Int64) -> Int {
        Int((seconds >= 0 ? seconds : seconds - 86_399) / 86_400)
    }

    private static func sentDay(_ cache: inout TextCache) -> Int? {
        guard let value = cache.fields("date").first else { return nil }
        return Self.dateDay(value)
    }

    /// The day of an RFC 5322 date (`[Mon, ]7 Dec 2026 10:00:00 +0100`), in its own zone.
    static func dateDay(_ text: String) -> Int? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
        for (index, word) in words.enumerated() where index + 2 < words.count {
            guard let day = Int(word), (1...31).contains(day),
                let month = MessageDate.monthNames.firstIndex(where: { $0.lowercased() == words[index + 1].prefix(3) }),
                var year = Int(words[index + 2])
            else { continue }
            if year < 50 { year += 2000 } else if year < 1000 { year += 1900 }
            // A stranger writes this field: a year no calendar reaches is no date (and would
            // overflow the day count).
            guard (1...9999).contains(year) else { continue }
            return IMAPDate(year: year, month: month + 1, day: day).daysSince1970
        }
        return nil
    }
}

/// Case-insensitive search of ASCII text in octets.
enum ASCIISearch {
    /// Whether `octets[range]` contains `needle` (lower-case ASCII), ASCII letters in any case.
    static func contains(_ octets: [UInt8], _ range: Range<Int>, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, range.count >= needle.count else { return needle.isEmpty }
        let upperFirst = Self.isLower(first) ? first - 0x20 : first
        return octets.withUnsafeBufferPointer { buffer in
            var index = range.lowerBound
            let last = range.upperBound - needle.count
            while index <= last {
                let byte = buffer[index]
                if byte == first || byte == upperFirst {
                    var matched = true
                    for offset in 1..<needle.count {
                        var other = buffer[index + offset]
                        if other >= 0x41 && other <= 0x5A { other += 0x20 }
                        if other != needle[offset] {
                            matched = false
                            break
                        }
                    }
                    if matched { return true }
                }
                index += 1
            }
            return false
        }
    }

    static func isLower(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x7A }
}
