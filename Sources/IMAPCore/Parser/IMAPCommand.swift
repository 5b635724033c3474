/// One command from the client, with its tag (RFC 9051 §6 and the extensions Petrel offers).
public struct TaggedCommand: Hashable, Sendable {
    public var tag: String
    public var command: IMAPCommand

    public init(tag: String, command: IMAPCommand) {
        self.tag = tag
        self.command = command
    }
}

public enum IMAPCommand: Hashable, Sendable {
    // Any state (§6.1)
    case capability
    case noop
    /// IMAP4rev1's CHECK (RFC 3501 §6.4.1): a NOOP in IMAP4rev2.
    case check
    case logout
    /// RFC 2971.
    case id([IMAPIDField]?)
    // Not authenticated (§6.2)
    case startTLS
    /// `initialResponse` (SASL-IR, RFC 4959): the base64 text, `=` for an empty response.
    case authenticate(mechanism: String, initialResponse: String?)
    case login(username: [UInt8], password: [UInt8])
    // Authenticated (§6.3)
    case enable([String])
    case select(IMAPMailboxName, IMAPSelectOptions = IMAPSelectOptions())
    case examine(IMAPMailboxName, IMAPSelectOptions = IMAPSelectOptions())
    case create(IMAPMailboxName)
    case delete(IMAPMailboxName)
    case rename(from: IMAPMailboxName, to: IMAPMailboxName)
    case subscribe(IMAPMailboxName)
    case unsubscribe(IMAPMailboxName)
    case list(IMAPListCommand)
    /// IMAP4rev1's LSUB (RFC 3501 §6.3.9), which many clients still send.
    case lsub(reference: IMAPMailboxName, pattern: [UInt8])
    case namespace
    case status(IMAPMailboxName, [IMAPStatusItem])
    case append(IMAPAppend)
    case idle
    /// QUOTA (RFC 9208): a quota root's usage and limits; the roots of a mailbox; SETQUOTA,
    /// which Petrel answers with NO (quotas are the operator's).
    case getQuota(String)
    case getQuotaRoot(IMAPMailboxName)
    case setQuota(String)
    /// COMPRESS (RFC 4978): the mechanism, upper case.
    case compress(String)
    // Selected (§6.4)
    case close
    case unselect
    case expunge
    /// UID EXPUNGE (UIDPLUS, RFC 4315).
    case uidExpunge(IMAPSequenceSet)
    case search(IMAPSearch, uid: Bool)
    case fetch(IMAPSequenceSet, [IMAPFetchItem], uid: Bool, modifiers: IMAPFetchModifiers = IMAPFetchModifiers())
    case store(IMAPSequenceSet, IMAPStore, uid: Bool)
    case copy(IMAPSequenceSet, IMAPMailboxName, uid: Bool)
    case move(IMAPSequenceSet, IMAPMailboxName, uid: Bool)
}

/// SELECT and EXAMINE's parameters (RFC 7162 §3.1.8, §3.2.5).
public struct IMAPSelectOptions: Hashable, Sendable {
    /// `(CONDSTORE)`: a CONDSTORE-enabling SELECT.
    public var condStore: Bool
    /// `(QRESYNC (...))`: what the client knew of the mailbox when it last had it.
    public var qresync: IMAPQResync?

    public init(condStore: Bool = false, qresync: IMAPQResync? = nil) {
        self.condStore = condStore
        self.qresync = qresync
    }
}

/// QRESYNC's SELECT parameter: `(uidvalidity mod-sequence-value [known-uids [seq-match-data]])`.
public struct IMAPQResync: Hashable, Sendable {
    public var uidValidity: UInt32
    public var modSeq: UInt64
    /// The UIDs the client knows of (nil: all).
    public var knownUIDs: IMAPSequenceSet?
    /// Sequence numbers the client knows, and the UID each had then (equally many).
    public var sequenceMatch: (sequences: IMAPSequenceSet, uids: IMAPSequenceSet)?

    public init(
        uidValidity: UInt32,
        modSeq: UInt64,
        knownUIDs: IMAPSequenceSet? = nil,
        sequenceMatch: (sequences: IMAPSequenceSet, uids: IMAPSequenceSet)? = nil
    ) {
        self.uidValidity = uidValidity
        self.modSeq = modSeq
        self.knownUIDs = knownUIDs
        self.sequenceMatch = sequenceMatch
    }

    public static func == (lhs: IMAPQResync, rhs: IMAPQResync) -> Bool {
        lhs.uidValidity == rhs.uidValidity && lhs.modSeq == rhs.modSeq && lhs.knownUIDs == rhs.knownUIDs
            && lhs.sequenceMatch?.sequences == rhs.sequenceMatch?.sequences
            && lhs.sequenceMatch?.uids == rhs.sequenceMatch?.uids
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.uidValidity)
        hasher.combine(self.modSeq)
        hasher.combine(self.knownUIDs)
        hasher.combine(self.sequenceMatch?.sequences)
        hasher.combine(self.sequenceMatch?.uids)
    }
}

/// FETCH's modifiers (RFC 7162 §3.1.4, §3.2.6).
public struct IMAPFetchModifiers: Hashable, Sendable {
    /// Only messages whose MODSEQ is above this.
    public var changedSince: UInt64?
    /// With CHANGEDSINCE in UID FETCH under QRESYNC: report what vanished since, too.
    public var vanished: Bool

    public init(changedSince: UInt64? = nil, vanished: Bool = false) {
        self.changedSince = changedSince
        self.vanished = vanished
    }
}

/// One field of ID (RFC 2971): a name and its value, nil for NIL.
public struct IMAPIDField: Hashable, Sendable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String?) {
        self.name = name
        self.value = value
    }
}

/// A mailbox name as the client wrote it: UTF-8 under IMAP4rev2 and UTF8=ACCEPT, modified UTF-7
/// (RFC 3501 §5.1.3) before; the session decodes it. `INBOX` in any case is the inbox.
public struct IMAPMailboxName: Hashable, Sendable {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public init(_ text: String) {
        self.bytes = Array(text.utf8)
    }

    public var isInbox: Bool { self.bytes.map(IMAPReader.upper) == Array("INBOX".utf8) }
}

/// `sequence-set`: numbers and ranges, `*` being the largest in use.
public struct IMAPSequenceSet: Hashable, Sendable {
    public enum Bound: Hashable, Sendable {
        case number(UInt32)
        case last
    }

    public struct Range: Hashable, Sendable {
        public var from: Bound
        public var to: Bound

        public init(_ from: Bound, _ to: Bound) {
            self.from = from
            self.to = to
        }
    }

    public var ranges: [Range]

    public init(_ ranges: [Range]) {
        self.ranges = ranges
    }

    /// Ascending numbers as ranges (`1:3,7`).
    public init(ascending numbers: some Sequence<UInt32>) {
        var ranges: [Range] = []
        var start: UInt32?
        var previous: UInt32 = 0
        for number in numbers {
            if start == nil || number != previous &+ 1 {
                if let first = start { ranges.append(Range(.number(first), .number(previous))) }
                start = number
            }
            previous = number
        }
        if let first = start { ranges.append(Range(.number(first), .number(previous))) }
        self.ranges = ranges
    }

    /// The numbers of the set, ascending, each once; `*` is `last`. Nil when they would be
    /// more than `limit`.
    public func numbers(last: UInt32, limit: Int) -> [UInt32]? {
        var intervals: [(UInt32, UInt32)] = []
        for range in self.ranges {
            func value(_ bound: Bound) -> UInt32 {
                if case .number(let number) = bound { return number }
                return last
            }
            let (a, b) = (value(range.from), value(range.to))
            intervals.append((min(a, b), max(a, b)))
        }
        intervals.sort { $0.0 < $1.0 }
        var numbers: [UInt32] = []
        var next: UInt64 = 0
        for (low, high) in intervals {
            let start = max(UInt64(low), next)
            guard start <= UInt64(high) else { continue }
            guard numbers.count + Int(UInt64(high) - start + 1) <= limit else { return nil }
            numbers.append(contentsOf: UInt32(start)...high)
            next = UInt64(high) + 1
        }
        return numbers
    }
}

/// LIST, with LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819).
public struct IMAPListCommand: Hashable, Sendable {
    public enum Selection: String, Hashable, Sendable, CaseIterable {
        case subscribed = "SUBSCRIBED"
        case remote = "REMOTE"
        case recursiveMatch = "RECURSIVEMATCH"
        case specialUse = "SPECIAL-USE"
    }

    public enum ReturnOption: Hashable, Sendable {
        case subscribed
        case children
        case specialUse
        case status([IMAPStatusItem])
    }

    public var selection: [Selection]
    public var reference: IMAPMailboxName
    public var patterns: [[UInt8]]
    public var returnOptions: [ReturnOption]

    public init(
        selection: [Selection] = [],
        reference: IMAPMailboxName,
        patterns: [[UInt8]],
        returnOptions: [ReturnOption] = []
    ) {
        self.selection = selection
        self.reference = reference
        self.patterns = patterns
        self.returnOptions = returnOptions
    }
}

public enum IMAPStatusItem: String, Hashable, Sendable, CaseIterable {
    case messages = "MESSAGES"
    case uidNext = "UIDNEXT"
    case uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN"
    case deleted = "DELETED"
    /// STATUS=SIZE (RFC 8438).
    case size = "SIZE"
    /// IMAP4rev1 only.
    case recent = "RECENT"
    /// CONDSTORE (RFC 7162 §3.1.2.2).
    case highestModSeq = "HIGHESTMODSEQ"
    /// QUOTA (RFC 9208 §4.2): what EXPUNGE would free, in units of 1024 octets.
    case deletedStorage = "DELETED-STORAGE"
    /// OBJECTID (RFC 8474 §4.2).
    case mailboxID = "MAILBOXID"
}

/// A flag: a system flag (`\Seen`), or a keyword (`$Forwarded`, `work`).
public struct IMAPFlag: Hashable, Sendable {
    public var name: String

    public init(_ name: String) {
        self.name = name
    }

    public static let seen = IMAPFlag("\\Seen")
    public static let answered = IMAPFlag("\\Answered")
    public static let flagged = IMAPFlag("\\Flagged")
    public static let deleted = IMAPFlag("\\Deleted")
    public static let draft = IMAPFlag("\\Draft")

    /// System flags compare without case; keywords too (RFC 9051 §2.3.2 makes flags
    /// case-insensitive).
    public var canonical: String { self.name.uppercased() }

    public static func == (lhs: IMAPFlag, rhs: IMAPFlag) -> Bool { lhs.canonical == rhs.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.canonical) }
}

/// APPEND's message, with its flags and date. The message came as a literal: in memory when
/// small, else streamed to the session before the command was parsed.
public struct IMAPAppend: Hashable, Sendable {
    public var mailbox: IMAPMailboxName
    public var flags: [IMAPFlag]
    /// `date-time`, as written (`"07-Dec-2026 14:03:00 +0000"`).
    public var internalDate: IMAPDateTime?
    public var size: UInt64
    public var binary: Bool
    /// The octets when they came in memory; nil when they were streamed.
    public var message: [UInt8]?

    public init(
        mailbox: IMAPMailboxName,
        flags: [IMAPFlag],
        internalDate: IMAPDateTime?,
        size: UInt64,
        binary: Bool,
        message: [UInt8]?
    ) {
        self.mailbox = mailbox
        self.flags = flags
        self.internalDate = internalDate
        self.size = size
        self.binary = binary
        self.message = message
    }
}

/// `date-time` (RFC 9051 §9): day, month, year, time and zone.
public struct IMAPDateTime: Hashable, Sendable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int
    /// Minutes east of UTC.
    public var zone: Int

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, zone: Int) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.zone = zone
    }

    /// A time in UTC (a message's internal date as the store keeps it).
    public init(unixTime: Int64) {
        let days = unixTime >= 0 ? unixTime / 86_400 : (unixTime - 86_399) / 86_400
        let seconds = Int(unixTime - days * 86_400)
        // Civil from days (H. Hinnant's algorithm), for the proleptic Gregorian calendar.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        let month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        let year = Int(yearOfEra + era * 400) + (month <= 2 ? 1 : 0)
        self.init(
            year: year,
            month: month,
            day: day,
            hour: seconds / 3600,
            minute: seconds / 60 % 60,
            second: seconds % 60,
            zone: 0
        )
    }

    /// Seconds since 1970 in UTC.
    public var unixTime: Int64 {
        let days = IMAPDate(year: self.year, month: self.month, day: self.day).daysSince1970
        return Int64(days) * 86_400 + Int64(self.hour * 3600 + self.minute * 60 + self.second - self.zone * 60)
    }
}

/// `date` (SEARCH's BEFORE, ON, SINCE...): a day.
public struct IMAPDate: Hashable, Sendable {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Days since 1970-01-01 (proleptic Gregorian; Howard Hinnant's days_from_civil).
    public var daysSince1970: Int {
        let y = self.month <= 2 ? self.year - 1 : self.year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (self.month + (self.month > 2 ? -3 : 9)) + 2) / 5 + self.day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

/// STORE's change: replace, add or remove flags; `.SILENT` asks for no untagged FETCH.
public struct IMAPStore: Hashable, Sendable {
    public enum Operation: Hashable, Sendable {
        case replace
        case add
        case remove
    }

    public var operation: Operation
    public var silent: Bool
    public var flags: [IMAPFlag]
    /// CONDSTORE's `(UNCHANGEDSINCE n)`: only messages whose MODSEQ is at most this change.
    public var unchangedSince: UInt64?

    public init(operation: Operation, silent: Bool, flags: [IMAPFlag], unchangedSince: UInt64? = nil) {
        self.operation = operation
        self.silent = silent
        self.flags = flags
        self.unchangedSince = unchangedSince
    }
}

extension IMAPCommand {
    /// The command's name as the client wrote it (`UID FETCH`), for logs and metrics: one of a
    /// fixed few, whatever the client sent.
    public var name: String {
        switch self {
        case .capability: return "CAPABILITY"
        case .noop: return "NOOP"
        case .check: return "CHECK"
        case .logout: return "LOGOUT"
        case .id: return "ID"
        case .startTLS: return "STARTTLS"
        case .authenticate: return "AUTHENTICATE"
        case .login: return "LOGIN"
        case .enable: return "ENABLE"
        case .select: return "SELECT"
        case .examine: return "EXAMINE"
        case .create: return "CREATE"
        case .delete: return "DELETE"
        case .rename: return "RENAME"
        case .subscribe: return "SUBSCRIBE"
        case .unsubscribe: return "UNSUBSCRIBE"
        case .list: return "LIST"
        case .lsub: return "LSUB"
        case .namespace: return "NAMESPACE"
        case .status: return "STATUS"
        case .append: return "APPEND"
        case .idle: return "IDLE"
        case .getQuota: return "GETQUOTA"
        case .getQuotaRoot: return "GETQUOTAROOT"
        case .setQuota: return "SETQUOTA"
        case .compress: return "COMPRESS"
        case .close: return "CLOSE"
        case .unselect: return "UNSELECT"
        case .expunge: return "EXPUNGE"
        case .uidExpunge: return "UID EXPUNGE"
        case .search(_, let uid): return uid ? "UID SEARCH" : "SEARCH"
        case .fetch(_, _, let uid, _): return uid ? "UID FETCH" : "FETCH"
        case .store(_, _, let uid): return uid ? "UID STORE" : "STORE"
        case .copy(_, _, let uid): return uid ? "UID COPY" : "COPY"
        case .move(_, _, let uid): return uid ? "UID MOVE" : "MOVE"
        }
    }
}
