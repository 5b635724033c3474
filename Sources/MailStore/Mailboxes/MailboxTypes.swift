/// What the mailbox side of the store says about messages and folders, in plain values: the IMAP
/// server turns them into its own types, and another engine (PostgreSQL) can produce the same.

/// A message's flags: the five system flags of RFC 9051 §2.3.2 (each a bit) and keywords.
public struct MessageFlags: Hashable, Sendable {
    public struct System: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let seen = System(rawValue: 1)
        public static let answered = System(rawValue: 2)
        public static let flagged = System(rawValue: 4)
        public static let deleted = System(rawValue: 8)
        public static let draft = System(rawValue: 16)

        /// Each flag with its IMAP name.
        public static let names: [(System, String)] = [
            (.seen, "\\Seen"), (.answered, "\\Answered"), (.flagged, "\\Flagged"), (.deleted, "\\Deleted"),
            (.draft, "\\Draft"),
        ]

        /// The flag an IMAP name stands for (any case), or nil for a keyword.
        public init?(name: String) {
            let upper = name.uppercased()
            guard let found = Self.names.first(where: { $0.1.uppercased() == upper }) else { return nil }
            self = found.0
        }
    }

    public var system: System
    /// Keywords as the client spelled them first; compared without regard to ASCII case.
    public var keywords: [String]

    public init(system: System = [], keywords: [String] = []) {
        self.system = system
        self.keywords = keywords
    }

    /// From IMAP flag names (system flags and keywords mixed, any case).
    public init(names: [String]) {
        self.init()
        for name in names { self.insert(name) }
    }

    public var names: [String] {
        System.names.filter { self.system.contains($0.0) }.map(\.1) + self.keywords
    }

    public mutating func insert(_ name: String) {
        if let flag = System(name: name) {
            self.system.insert(flag)
        } else if !self.keywords.contains(where: { $0.uppercased() == name.uppercased() }) {
            self.keywords.append(name)
        }
    }

    public mutating func remove(_ name: String) {
        if let flag = System(name: name) {
            self.system.remove(flag)
        } else {
            self.keywords.removeAll { $0.uppercased() == name.uppercased() }
        }
    }

    /// The letters maildir(5) writes for the system flags.
    var maildirFlags: [String] { System.names.filter { self.system.contains($0.0) }.map(\.1) }
}

/// One message of a folder, as the index knows it.
public struct StoredMessage: Hashable, Sendable {
    public var uid: UInt32
    public var modSeq: UInt64
    public var flags: MessageFlags
    /// RFC822.SIZE: the size with CRLF line ends, as IMAP serves it.
    public var size: Int
    /// When the message arrived (seconds since 1970; the file's mtime, as Dovecot reads it).
    public var internalDate: Int64
    /// OBJECTID's EMAILID (RFC 8474): the same in every folder a COPY or MOVE takes it to.
    public var emailID: String

    public init(uid: UInt32, modSeq: UInt64, flags: MessageFlags, size: Int, internalDate: Int64, emailID: String = "")
    {
        self.uid = uid
        self.modSeq = modSeq
        self.flags = flags
        self.size = size
        self.internalDate = internalDate
        self.emailID = emailID
    }
}

/// A folder's state: its UIDs are strictly ascending, never reused while `uidValidity` holds.
public struct FolderState: Hashable, Sendable {
    /// OBJECTID's MAILBOXID (RFC 8474): the same through RENAME, another after DELETE and CREATE.
    public var mailboxID: String
    public var uidValidity: UInt32
    public var uidNext: UInt32
    public var highestModSeq: UInt64
    /// Ascending by UID.
    public let messages: [StoredMessage]
    /// The messages' UIDs and MODSEQs, in the same order: the store keeps these arrays between
    /// changes, so that every session's view can compare integers and share them.
    public let uids: [UInt32]
    public let modSeqs: [UInt64]

    /// The message with this UID (a binary search: `messages` ascend by UID).
    public func message(uid: UInt32) -> StoredMessage? {
        Self.index(of: uid, in: self.messages).map { self.messages[$0] }
    }

    static func index(of uid: UInt32, in messages: [StoredMessage]) -> Int? {
        let position = messages.partitioningIndex { $0.uid >= uid }
        return position < messages.count && messages[position].uid == uid ? position : nil
    }

    public init(
        mailboxID: String = "",
        uidValidity: UInt32,
        uidNext: UInt32,
        highestModSeq: UInt64,
        messages: [StoredMessage],
        columns: (uids: [UInt32], modSeqs: [UInt64])? = nil
    ) {
        self.mailboxID = mailboxID
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModSeq = highestModSeq
        self.messages = messages
        let columns = columns ?? (messages.map(\.uid), messages.map(\.modSeq))
        precondition(columns.uids.count == messages.count && columns.modSeqs.count == messages.count)
        self.uids = columns.uids
        self.modSeqs = columns.modSeqs
    }
}

extension RandomAccessCollection {
    /// The first index whose element satisfies `belongs` (false for a prefix, true after), by
    /// binary search.
    func partitioningIndex(where belongs: (Element) -> Bool) -> Index {
        var low = self.startIndex
        var count = self.count
        while count > 0 {
            let half = count / 2
            let middle = self.index(low, offsetBy: half)
            if belongs(self[middle]) {
                count = half
            } else {
                low = self.index(after: middle)
                count -= half + 1
            }
        }
        return low
    }
}

/// A folder in a user's list.
public struct FolderInfo: Hashable, Sendable {
    /// The IMAP name (modified UTF-7, `.` between levels); `INBOX` for the Maildir's root.
    public var name: String
    /// `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive` (RFC 6154), or nil.
    public var specialUse: String?
    public var subscribed: Bool
    /// Whether a folder exists under this one.
    public var hasChildren: Bool
    /// A name that is only a level of others' names (`a` of `a.b`), with no folder of its own.
    public var exists: Bool

    public init(name: String, specialUse: String?, subscribed: Bool, hasChildren: Bool, exists: Bool = true) {
        self.name = name
        self.specialUse = specialUse
        self.subscribed = subscribed
        self.hasChildren = hasChildren
        self.exists = exists
    }
}

/// Why a mailbox operation was refused; the IMAP server gives each its response code.
public enum MailboxError: Error, Hashable, Sendable, CustomStringConvertible {
    case nonexistent(String)
    case alreadyExists(String)
    /// The name cannot be a folder (what is wrong with it in words).
    case invalidName(String)
    case cannot(String)
    /// Over a limit of the store's (folders per account, keywords per message).
    case limit(String)
    case storage(StoreError)

    public var description: String {
        switch self {
        case .nonexistent(let name): return "no folder \(name)"
        case .alreadyExists(let name): return "\(name) exists already"
        case .invalidName(let reason): return reason
        case .cannot(let reason): return reason
        case .limit(let reason): return reason
        case .storage(let error): return error.description
        }
    }
}
