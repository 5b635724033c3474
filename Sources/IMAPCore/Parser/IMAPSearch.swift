/// SEARCH (RFC 9051 §6.4.4), with ESEARCH's return options (RFC 4731).
public struct IMAPSearch: Hashable, Sendable {
    public enum ReturnOption: String, Hashable, Sendable, CaseIterable {
        case min = "MIN"
        case max = "MAX"
        case all = "ALL"
        case count = "COUNT"
        case save = "SAVE"
    }

    /// nil: no RETURN (the IMAP4rev1 `* SEARCH` answer, unless IMAP4rev2 is enabled); empty:
    /// `RETURN ()`, which means ALL.
    public var returnOptions: [ReturnOption]?
    public var charset: String?
    /// The keys, all of which must match.
    public var keys: [IMAPSearchKey]

    public init(returnOptions: [ReturnOption]? = nil, charset: String? = nil, keys: [IMAPSearchKey]) {
        self.returnOptions = returnOptions
        self.charset = charset
        self.keys = keys
    }
}

public indirect enum IMAPSearchKey: Hashable, Sendable {
    case all
    case flag(IMAPFlag)
    case notFlag(IMAPFlag)
    /// IMAP4rev1's NEW, OLD, RECENT (no session has `\Recent` in IMAP4rev2).
    case new
    case old
    case recent
    case header(String, String)
    /// BCC, CC, FROM, SUBJECT, TO: a header field's decoded text contains the string.
    case addressOrSubject(field: String, String)
    case body(String)
    case text(String)
    /// Internal date, day precision.
    case before(IMAPDate)
    case on(IMAPDate)
    case since(IMAPDate)
    /// The Date header field, day precision.
    case sentBefore(IMAPDate)
    case sentOn(IMAPDate)
    case sentSince(IMAPDate)
    case larger(UInt64)
    case smaller(UInt64)
    case uid(IMAPSequenceSet)
    /// CONDSTORE's MODSEQ (RFC 7162 §3.1.5): messages whose MODSEQ is at least this. A flag's
    /// own MODSEQ (`"/flags/\\Seen" all`) is the message's: Petrel keeps one per message.
    case modSeq(UInt64)
    /// OBJECTID (RFC 8474 §6): the message with this EMAILID; THREADID matches none (Petrel
    /// does not thread).
    case emailID(String)
    case threadID(String)
    case sequence(IMAPSequenceSet)
    case not(IMAPSearchKey)
    case or(IMAPSearchKey, IMAPSearchKey)
    case and([IMAPSearchKey])
}
