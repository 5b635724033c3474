/// The server's status responses (RFC 9051 §7.1).
public enum IMAPStatus: String, Hashable, Sendable {
    case ok = "OK"
    case no = "NO"
    case bad = "BAD"
    case bye = "BYE"
    case preauth = "PREAUTH"
}

/// Response codes (RFC 9051 §7.1, RFC 5530, UIDPLUS, RFC 7888's TOOBIG).
public enum IMAPResponseCode: Hashable, Sendable {
    case alert
    case alreadyExists
    case appendUID(validity: UInt32, uid: UInt32)
    case authenticationFailed
    case authorizationFailed
    case badCharset([String])
    case cannot
    case capability([String])
    case clientBug
    case closed
    /// COMPRESS (RFC 4978 §3): compression is on already.
    case compressionActive
    case contactAdmin
    case copyUID(validity: UInt32, from: IMAPSequenceSet, to: IMAPSequenceSet)
    case corruption
    case expired
    case expungeIssued
    case hasChildren
    /// CONDSTORE (RFC 7162 §3.1.2.1): the mailbox's highest MODSEQ.
    case highestModSeq(UInt64)
    /// CONDSTORE: the messages a conditional STORE left alone (RFC 7162 §3.1.3).
    case modified(IMAPSequenceSet)
    case inUse
    case limit
    /// OBJECTID (RFC 8474 §4): a mailbox's id, on SELECT and CREATE.
    case mailboxID(String)
    case nonexistent
    case noPerm
    case notSaved
    case overQuota
    case parse
    /// The flags a client may set for good; `\*` when it may also make new keywords.
    case permanentFlags([IMAPFlag], newKeywords: Bool)
    case privacyRequired
    case readOnly
    case readWrite
    case serverBug
    case tooBig
    case tryCreate
    case uidNext(UInt32)
    case uidNotSticky
    case uidValidity(UInt32)
    case unavailable
    /// IMAP4rev1 only.
    case unseen(UInt32)
    /// BINARY (RFC 3516): a part's transfer encoding is unknown.
    case unknownCTE
}

/// One response, as the session hands it to the encoder.
public enum IMAPResponse: Hashable, Sendable {
    /// `+ text`: go on (a literal, a SASL challenge in base64, IDLE).
    case continuation(String)
    case tagged(String, IMAPStatus, IMAPResponseCode?, String)
    case untagged(IMAPStatus, IMAPResponseCode?, String)
    case capability([String])
    case enabled([String])
    /// `* LIST (attributes) "/" name`, or LSUB's same shape; `status` for LIST-STATUS is a
    /// `.status` response of its own.
    case list(attributes: [String], delimiter: Character?, name: String, lsub: Bool)
    case status(name: String, [IMAPStatusValue])
    case flags([IMAPFlag])
    case exists(UInt32)
    case recent(UInt32)
    case expunge(UInt32)
    /// QRESYNC (RFC 7162 §3.2.10): UIDs gone from the mailbox; `earlier` when they were gone
    /// before (sequence numbers do not move), else EXPUNGE's meaning for each.
    case vanished(earlier: Bool, IMAPSequenceSet)
    /// IMAP4rev1's `* SEARCH n...`; `modSeq` (CONDSTORE) when the search had a MODSEQ key.
    case search([UInt32], modSeq: UInt64? = nil)
    /// ESEARCH (RFC 4731, IMAP4rev2's only SEARCH answer).
    case esearch(
        tag: String,
        uid: Bool,
        min: UInt32?,
        max: UInt32?,
        count: UInt32?,
        all: IMAPSequenceSet?,
        modSeq: UInt64? = nil
    )
    /// `* NAMESPACE`: the personal namespace only (prefix and delimiter).
    case namespace(prefix: String, delimiter: Character)
    case id([IMAPIDField]?)
    /// `* n FETCH (...)`.
    case fetch(UInt32, [IMAPFetchValue])
    /// QUOTA (RFC 9208 §5.1): `* QUOTA root (resource usage limit ...)`.
    case quota(root: String, [IMAPQuotaResource])
    /// `* QUOTAROOT mailbox root...`.
    case quotaRoot(mailbox: String, roots: [String])

}

/// One resource of a QUOTA response: its name (`STORAGE`, in units of 1024 octets), usage and
/// limit.
public struct IMAPQuotaResource: Hashable, Sendable {
    public var name: String
    public var usage: UInt64
    public var limit: UInt64

    public init(_ name: String, usage: UInt64, limit: UInt64) {
        self.name = name
        self.usage = usage
        self.limit = limit
    }
}

/// One item of a STATUS response.
public struct IMAPStatusValue: Hashable, Sendable {
    public var item: IMAPStatusItem
    public var value: UInt64
    /// MAILBOXID's id (its value is no number).
    public var text: String?

    public init(_ item: IMAPStatusItem, _ value: UInt64) {
        self.item = item
        self.value = value
    }

    public init(_ item: IMAPStatusItem, text: String) {
        self.item = item
        self.value = 0
        self.text = text
    }
}
