import NIOCore

/// Writes responses as octets (RFC 9051 §7). Whatever the session puts in a response, what goes
/// out is well formed: free text loses CR, LF and NUL (a client must never read a second line
/// into one response), strings that cannot be quoted go out as literals, and mailbox names are
/// modified UTF-7 for IMAP4rev1 clients, UTF-8 once IMAP4rev2 or UTF8=ACCEPT is enabled.
public struct IMAPResponseEncoder: Sendable {
    /// Whether mailbox names and strings may be UTF-8.
    public var utf8: Bool

    public init(utf8: Bool) {
        self.utf8 = utf8
    }

    public func encode(_ response: IMAPResponse) -> ByteBuffer {
        var out = ByteBuffer()
        self.encode(response, into: &out)
        return out
    }

    public func encode(_ response: IMAPResponse, into out: inout ByteBuffer) {
        switch response {
        case .continuation(let text):
            out.writeString("+ " + Self.text(text))
        case .tagged(let tag, let status, let code, let text):
            out.writeString(Self.tag(tag) + " " + status.rawValue + " ")
            self.writeText(code, text, into: &out)
        case .untagged(let status, let code, let text):
            out.writeString("* " + status.rawValue + " ")
            self.writeText(code, text, into: &out)
        case .capability(let names):
            out.writeString("* CAPABILITY " + Self.atoms(names).joined(separator: " "))
        case .enabled(let names):
            out.writeString("* ENABLED" + Self.atoms(names).map { " " + $0 }.joined())
        case .list(let attributes, let delimiter, let name, let lsub):
            out.writeString(lsub ? "* LSUB (" : "* LIST (")
            out.writeString(attributes.map(Self.atom).joined(separator: " ") + ") ")
            if let delimiter {
                self.writeString(String(delimiter), into: &out)
            } else {
                out.writeString("NIL")
            }
            out.writeString(" ")
            self.writeMailbox(name, into: &out)
        case .status(let name, let values):
            out.writeString("* STATUS ")
            self.writeMailbox(name, into: &out)
            out.writeString(
                " ("
                    + values.map { value in
                        value.text.map { "\(value.item.rawValue) (" + Self.objectID($0) + ")" }
                            ?? "\(value.item.rawValue) \(value.value)"
                    }.joined(separator: " ") + ")"
            )
        case .flags(let flags):
            out.writeString("* FLAGS (" + Self.atoms(flags.map(\.name)).joined(separator: " ") + ")")
        case .exists(let count):
            out.writeString("* \(count) EXISTS")
        case .recent(let count):
            out.writeString("* \(count) RECENT")
        case .expunge(let number):
            out.writeString("* \(number) EXPUNGE")
        case .vanished(let earlier, let uids):
            out.writeString("* VANISHED " + (earlier ? "(EARLIER) " : "") + Self.sequenceSet(uids))
        case .search(let numbers, let modSeq):
            out.writeString("* SEARCH" + numbers.map { " \($0)" }.joined())
            if let modSeq, !numbers.isEmpty { out.writeString(" (MODSEQ \(modSeq))") }
        case .esearch(let tag, let uid, let min, let max, let count, let all, let modSeq):
            out.writeString("* ESEARCH (TAG ")
            self.writeString(tag, into: &out)
            out.writeString(")" + (uid ? " UID" : ""))
            if let min { out.writeString(" MIN \(min)") }
            if let max { out.writeString(" MAX \(max)") }
            if let count { out.writeString(" COUNT \(count)") }
            if let all, !all.ranges.isEmpty { out.writeString(" ALL " + Self.sequenceSet(all)) }
            if let modSeq { out.writeString(" MODSEQ \(modSeq)") }
        case .namespace(let prefix, let delimiter):
            out.writeString("* NAMESPACE ((")
            self.writeMailbox(prefix, into: &out)
            out.writeString(" ")
            self.writeString(String(delimiter), into: &out)
            out.writeString(")) NIL NIL")
        case .fetch(let number, let values):
            self.writeFetch(number, values, into: &out)
            return
        case .quota(let root, let resources):
            out.writeString("* QUOTA ")
            self.writeString(root, into: &out)
            out.writeString(
                " (" + resources.map { Self.atom($0.name) + " \($0.usage) \($0.limit)" }.joined(separator: " ") + ")"
            )
        case .quotaRoot(let mailbox, let roots):
            out.writeString("* QUOTAROOT ")
            self.writeMailbox(mailbox, into: &out)
            for root in roots {
                out.writeString(" ")
                self.writeString(root, into: &out)
            }
        case .id(let fields):
            out.writeString("* ID ")
            guard let fields, !fields.isEmpty else {
                out.writeString("NIL")
                break
            }
            out.writeString("(")
            for (index, field) in fields.enumerated() {
                if index > 0 { out.writeString(" ") }
                self.writeString(field.name, into: &out)
                out.writeString(" ")
                if let value = field.value { self.writeString(value, into: &out) } else { out.writeString("NIL") }
            }
            out.writeString(")")
        }
        out.writeString("\r\n")
    }

    private func writeText(_ code: IMAPResponseCode?, _ text: String, into out: inout ByteBuffer) {
        if let code { out.writeString("[" + Self.code(code) + "] ") }
        // resp-text needs at least one character after a code, and text that starts with `[`
        // would be read as a code.
        var text = Self.text(text)
        if text.hasPrefix("[") { text = "(" + text.dropFirst() }
        out.writeString(text.isEmpty ? "done" : text)
    }

    // MARK: - Strings

    /// Free text: one line, whatever it was given.
    static func text(_ text: String) -> String {
        String(
            text.unicodeScalars.map { scalar -> Character in
                scalar == "\r" || scalar == "\n" || scalar == "\0" ? " " : Character(scalar)
            }
        )
    }

    /// A tag as the client sent it (the parser admits only ASTRING-CHARs), or `*` for none.
    static func tag(_ tag: String) -> String {
        tag.isEmpty || !tag.utf8.allSatisfy({ IMAPReader.isAStringChar($0) && $0 != UInt8(ascii: "+") }) ? "*" : tag
    }

    /// The server's own atoms, those that are left non-empty.
    static func atoms(_ names: [String]) -> [String] {
        names.map(Self.atom).filter { !$0.isEmpty && $0 != "\\" }
    }

    /// An atom of the server's own (capability names, attributes): atom characters only.
    static func atom(_ name: String) -> String {
        // `\` only first: a flag or an attribute (`\Seen`, `\HasNoChildren`).
        let bytes = Array(name.utf8)
        let body = bytes.drop { $0 == UInt8(ascii: "\\") }.filter(IMAPReader.isAtomChar)
        return (bytes.first == UInt8(ascii: "\\") && !body.isEmpty ? "\\" : "") + String(decoding: body, as: UTF8.self)
    }

    static func code(_ code: IMAPResponseCode) -> String {
        switch code {
        case .unknownCTE: return "UNKNOWN-CTE"
        case .alert: return "ALERT"
        case .alreadyExists: return "ALREADYEXISTS"
        case .appendUID(let validity, let uid): return "APPENDUID \(validity) \(uid)"
        case .authenticationFailed: return "AUTHENTICATIONFAILED"
        case .authorizationFailed: return "AUTHORIZATIONFAILED"
        case .badCharset(let charsets):
            return charsets.isEmpty
                ? "BADCHARSET" : "BADCHARSET (" + charsets.map(Self.atom).joined(separator: " ") + ")"
        case .cannot: return "CANNOT"
        case .capability(let names): return "CAPABILITY " + names.map(Self.atom).joined(separator: " ")
        case .clientBug: return "CLIENTBUG"
        case .closed: return "CLOSED"
        case .compressionActive: return "COMPRESSIONACTIVE"
        case .contactAdmin: return "CONTACTADMIN"
        case .copyUID(let validity, let from, let to):
            return "COPYUID \(validity) " + Self.sequenceSet(from) + " " + Self.sequenceSet(to)
        case .corruption: return "CORRUPTION"
        case .expired: return "EXPIRED"
        case .expungeIssued: return "EXPUNGEISSUED"
        case .hasChildren: return "HASCHILDREN"
        case .highestModSeq(let modSeq): return "HIGHESTMODSEQ \(modSeq)"
        case .modified(let set): return "MODIFIED " + Self.sequenceSet(set)
        case .inUse: return "INUSE"
        case .limit: return "LIMIT"
        case .mailboxID(let id): return "MAILBOXID (" + Self.objectID(id) + ")"
        case .nonexistent: return "NONEXISTENT"
        case .noPerm: return "NOPERM"
        case .notSaved: return "NOTSAVED"
        case .overQuota: return "OVERQUOTA"
        case .parse: return "PARSE"
        case .permanentFlags(let flags, let newKeywords):
            return "PERMANENTFLAGS ("
                + (Self.atoms(flags.map(\.name)) + (newKeywords ? ["\\*"] : [])).joined(separator: " ")
                + ")"
        case .privacyRequired: return "PRIVACYREQUIRED"
        case .readOnly: return "READ-ONLY"
        case .readWrite: return "READ-WRITE"
        case .serverBug: return "SERVERBUG"
        case .tooBig: return "TOOBIG"
        case .tryCreate: return "TRYCREATE"
        case .uidNext(let uid): return "UIDNEXT \(uid)"
        case .uidNotSticky: return "UIDNOTSTICKY"
        case .uidValidity(let validity): return "UIDVALIDITY \(validity)"
        case .unavailable: return "UNAVAILABLE"
        case .unseen(let number): return "UNSEEN \(number)"
        }
    }

    /// An object id of the server's own, kept to OBJECTID's characters.
    static func objectID(_ id: String) -> String {
        let kept = String(decoding: id.utf8.filter(IMAPReader.isObjectIDChar).prefix(255), as: UTF8.self)
        return kept.isEmpty ? "-" : kept
    }

    static func sequenceSet(_ set: IMAPSequenceSet) -> String {
        set.ranges.map { range in
            func bound(_ bound: IMAPSequenceSet.Bound) -> String {
                if case .number(let number) = bound { return "\(number)" }
                return "*"
            }
            return range.from == range.to ? bound(range.from) : bound(range.from) + ":" + bound(range.to)
        }.joined(separator: ",")
    }

    /// A mailbox name: as it is (UTF-8) to a client that has UTF-8 on, modified UTF-7 to one
    /// that has not.
    func writeMailbox(_ name: String, into out: inout ByteBuffer) {
        self.writeString(self.utf8 ? name : ModifiedUTF7.encode(name), into: &out)
    }

    /// A string: quoted when it can be (no CR, LF or NUL; 8-bit only when UTF-8 is on), else a
    /// literal.
    func writeString(_ string: String, into out: inout ByteBuffer) {
        self.writeString(Array(string.utf8), into: &out)
    }

    func writeString(_ bytes: [UInt8], into out: inout ByteBuffer) {
        // NUL is no CHAR8: a literal cannot carry it either (only a literal8 can).
        let bytes = bytes.contains(0) ? bytes.map { $0 == 0 ? 0x20 : $0 } : bytes
        let quotable =
            bytes.count <= 1_000
            && !bytes.contains { $0 == 0x0D || $0 == 0x0A || (!self.utf8 && $0 >= 0x80) }
            && (!self.utf8 || String(validating: bytes, as: UTF8.self) != nil)
        guard quotable else {
            out.writeString("{\(bytes.count)}\r\n")
            out.writeBytes(bytes)
            return
        }
        out.writeInteger(UInt8(ascii: "\""))
        for byte in bytes {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.writeInteger(UInt8(ascii: "\\")) }
            out.writeInteger(byte)
        }
        out.writeInteger(UInt8(ascii: "\""))
    }
}
