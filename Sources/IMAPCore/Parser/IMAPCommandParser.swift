import MailCore

/// Reads one command as the framer delivered it (RFC 9051 §9's `command`). Pure: the session
/// decides whether the command is allowed in its state; the parser only says what was asked.
public enum IMAPCommandParser {
    /// Deepest nesting of search keys (NOT, OR, parentheses): a client cannot make the parser
    /// recurse without bound.
    public static let maximumSearchDepth = 32

    public static func parse(_ text: IMAPCommandText) -> Result<TaggedCommand, IMAPParseError> {
        var reader = IMAPReader(text)
        let tag: String
        do {
            tag = try reader.tag()
            try reader.space()
        } catch {
            return .failure(IMAPParseError(tag: nil, "a command starts with a tag and a space"))
        }
        do {
            let command = try Self.command(&reader)
            try reader.end()
            return .success(TaggedCommand(tag: tag, command: command))
        } catch {
            return .failure(IMAPParseError(tag: tag, error.text))
        }
    }

    static func command(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPCommand {
        let name = try reader.atom().uppercased()
        switch name {
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "CHECK": return .check
        case "LOGOUT": return .logout
        case "STARTTLS": return .startTLS
        case "NAMESPACE": return .namespace
        case "IDLE": return .idle
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "EXPUNGE": return .expunge
        case "ID": return .id(try Self.idFields(&reader))
        case "AUTHENTICATE":
            try reader.space()
            let mechanism = try reader.atom().uppercased()
            guard reader.take(UInt8(ascii: " ")) else {
                return .authenticate(mechanism: mechanism, initialResponse: nil)
            }
            let response = reader.run { Self.isBase64($0) || $0 == UInt8(ascii: "=") }
            guard !response.isEmpty else { throw IMAPParseError("expected a base64 initial response or =") }
            return .authenticate(mechanism: mechanism, initialResponse: String(decoding: response, as: UTF8.self))
        case "LOGIN":
            try reader.space()
            let user = try reader.astring()
            try reader.space()
            return .login(username: user, password: try reader.astring())
        case "ENABLE":
            var names: [String] = []
            repeat {
                try reader.space()
                names.append(try reader.atom().uppercased())
            } while reader.peek() == UInt8(ascii: " ")
            return .enable(names)
        case "SELECT", "EXAMINE":
            try reader.space()
            let mailbox = try Self.mailbox(&reader)
            let options = try Self.selectOptions(&reader)
            return name == "SELECT" ? .select(mailbox, options) : .examine(mailbox, options)
        case "CREATE":
            try reader.space()
            return .create(try Self.mailbox(&reader))
        case "DELETE":
            try reader.space()
            return .delete(try Self.mailbox(&reader))
        case "RENAME":
            try reader.space()
            let from = try Self.mailbox(&reader)
            try reader.space()
            return .rename(from: from, to: try Self.mailbox(&reader))
        case "SUBSCRIBE":
            try reader.space()
            return .subscribe(try Self.mailbox(&reader))
        case "UNSUBSCRIBE":
            try reader.space()
            return .unsubscribe(try Self.mailbox(&reader))
        case "LIST": return .list(try Self.list(&reader))
        case "LSUB":
            try reader.space()
            let reference = IMAPMailboxName(try reader.astring())
            try Self.checkName(reference.bytes)
            try reader.space()
            let pattern = try Self.listMailbox(&reader)
            try Self.checkName(pattern)
            return .lsub(reference: reference, pattern: pattern)
        case "STATUS":
            try reader.space()
            let mailbox = try Self.mailbox(&reader)
            try reader.space()
            return .status(mailbox, try Self.statusItems(&reader))
        case "APPEND": return .append(try Self.append(&reader))
        case "COMPRESS":
            try reader.space()
            return .compress(try reader.atom().uppercased())
        case "GETQUOTA":
            try reader.space()
            return .getQuota(String(decoding: try reader.astring(), as: UTF8.self))
        case "GETQUOTAROOT":
            try reader.space()
            return .getQuotaRoot(try Self.mailbox(&reader))
        case "SETQUOTA":
            // `SETQUOTA quota-root SP setquota-list`: read whole, then refused by the session.
            try reader.space()
            let root = String(decoding: try reader.astring(), as: UTF8.self)
            try reader.space()
            _ = try reader.parenthesized { (reader: inout IMAPReader) throws(IMAPParseError) in
                let resource = try reader.atom()
                try reader.space()
                return (resource, try reader.number64())
            }
            return .setQuota(root)
        case "SEARCH": return .search(try Self.search(&reader), uid: false)
        case "FETCH": return try Self.fetch(&reader, uid: false)
        case "STORE": return try Self.store(&reader, uid: false)
        case "COPY", "MOVE": return try Self.copyOrMove(name, &reader, uid: false)
        case "UID":
            try reader.space()
            let subcommand = try reader.atom().uppercased()
            switch subcommand {
            case "FETCH": return try Self.fetch(&reader, uid: true)
            case "STORE": return try Self.store(&reader, uid: true)
            case "SEARCH": return .search(try Self.search(&reader), uid: true)
            case "COPY", "MOVE": return try Self.copyOrMove(subcommand, &reader, uid: true)
            case "EXPUNGE":
                try reader.space()
                return .uidExpunge(try Self.sequenceSet(&reader))
            default: throw IMAPParseError("unknown UID command \(Self.shown(subcommand))")
            }
        default:
            throw IMAPParseError("unknown command \(Self.shown(name))")
        }
    }

    /// A name as it may be echoed in a reply: printable ASCII, at most 32 characters.
    static func shown(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F }.prefix(32).map(Character.init))
    }

    static func isBase64(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default: return false
        }
    }

    // MARK: - Pieces

    /// `mailbox = "INBOX" / astring`: UTF-8 (modified UTF-7, IMAP4rev1's, is ASCII) without
    /// control characters, which a literal could otherwise carry into names on disk and into
    /// LIST responses.
    static func mailbox(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPMailboxName {
        let bytes = try reader.astring()
        guard !bytes.isEmpty else { throw IMAPParseError("an empty mailbox name") }
        try Self.checkName(bytes)
        return IMAPMailboxName(bytes)
    }

    static func checkName(_ bytes: [UInt8]) throws(IMAPParseError) {
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }), String(validating: bytes, as: UTF8.self) != nil
        else {
            throw IMAPParseError("a mailbox name with control characters or not in UTF-8")
        }
    }

    /// `select-params = SP "(" select-param *(SP select-param) ")"`, when there are any:
    /// `CONDSTORE`, or `QRESYNC SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
    /// [SP seq-match-data] ")"` (RFC 7162 §7).
    static func selectOptions(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPSelectOptions {
        var options = IMAPSelectOptions()
        guard reader.take(UInt8(ascii: " ")) else { return options }
        let names = try reader.parenthesized(allowEmpty: false) { (reader: inout IMAPReader) throws(IMAPParseError) in
            let word = try reader.atom().uppercased()
            switch word {
            case "CONDSTORE":
                options.condStore = true
            case "QRESYNC":
                guard options.qresync == nil else { throw IMAPParseError("QRESYNC given twice") }
                try reader.space()
                try reader.expect(UInt8(ascii: "("), "(")
                let validity = try reader.number(nonZero: true)
                try reader.space()
                var qresync = IMAPQResync(uidValidity: validity, modSeq: try reader.modSequence())
                var more = reader.take(UInt8(ascii: " "))
                if more && reader.peek() != UInt8(ascii: "(") {
                    qresync.knownUIDs = try Self.sequenceSet(&reader, star: false)
                    more = reader.take(UInt8(ascii: " "))
                }
                if more {
                    try reader.expect(UInt8(ascii: "("), "(")
                    let sequences = try Self.sequenceSet(&reader, star: false)
                    try reader.space()
                    let uids = try Self.sequenceSet(&reader, star: false)
                    try reader.expect(UInt8(ascii: ")"), ")")
                    qresync.sequenceMatch = (sequences, uids)
                }
                try reader.expect(UInt8(ascii: ")"), ")")
                options.qresync = qresync
            default:
                throw IMAPParseError("unknown SELECT parameter \(Self.shown(word))")
            }
            return word
        }
        guard names.count <= 2 else { throw IMAPParseError("too many SELECT parameters") }
        return options
    }

    /// `id-params-list`: NIL, or up to 30 pairs of string and nstring (RFC 2971 §3.3).
    static func idFields(_ reader: inout IMAPReader) throws(IMAPParseError) -> [IMAPIDField]? {
        try reader.space()
        if reader.takeWord("NIL") { return nil }
        var fields: [IMAPIDField] = []
        try reader.expect(UInt8(ascii: "("), "( or NIL")
        while !reader.take(UInt8(ascii: ")")) {
            if !fields.isEmpty { try reader.space() }
            let name = String(decoding: try reader.string(), as: UTF8.self)
            try reader.space()
            let value = try reader.nstring().map { String(decoding: $0, as: UTF8.self) }
            fields.append(IMAPIDField(name, value))
            guard fields.count <= 30 else { throw IMAPParseError("more than 30 ID fields") }
        }
        return fields
    }

    static func statusItems(_ reader: inout IMAPReader) throws(IMAPParseError) -> [IMAPStatusItem] {
        try reader.parenthesized(allowEmpty: false) { (reader: inout IMAPReader) throws(IMAPParseError) in
            let word = try reader.atom().uppercased()
            guard let item = IMAPStatusItem(rawValue: word) else {
                throw IMAPParseError("unknown status item \(Self.shown(word))")
            }
            return item
        }
    }

    /// `sequence-set`: `1`, `2:4`, `*`, `5:*`, joined by commas.
    /// Without `star`, `*` is refused (QRESYNC's `known-uids`, RFC 7162 §7).
    static func sequenceSet(_ reader: inout IMAPReader, star: Bool = true) throws(IMAPParseError) -> IMAPSequenceSet {
        var ranges: [IMAPSequenceSet.Range] = []
        repeat {
            let from = try Self.sequenceBound(&reader)
            let to = reader.take(UInt8(ascii: ":")) ? try Self.sequenceBound(&reader) : from
            guard star || (from != .last && to != .last) else { throw IMAPParseError("* is not allowed here") }
            ranges.append(IMAPSequenceSet.Range(from, to))
            guard ranges.count <= 10_000 else { throw IMAPParseError("a sequence set of more than 10000 ranges") }
        } while reader.take(UInt8(ascii: ","))
        return IMAPSequenceSet(ranges)
    }

    static func sequenceBound(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPSequenceSet.Bound {
        if reader.take(UInt8(ascii: "*")) { return .last }
        return .number(try reader.number(nonZero: true))
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`. `\Recent` cannot be set (RFC 3501 §6.4.6).
    static func flagList(_ reader: inout IMAPReader) throws(IMAPParseError) -> [IMAPFlag] {
        try reader.parenthesized { (reader: inout IMAPReader) throws(IMAPParseError) in try Self.flag(&reader) }
    }

    static func flag(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPFlag {
        if reader.take(UInt8(ascii: "\\")) {
            let name = try reader.atom()
            let flag = IMAPFlag("\\" + name)
            let system: [IMAPFlag] = [.seen, .answered, .flagged, .deleted, .draft]
            guard let known = system.first(where: { $0 == flag }) else {
                throw IMAPParseError("\\\(Self.shown(name)) is not a flag a client may set")
            }
            return known
        }
        return IMAPFlag(try reader.atom())
    }

    static func copyOrMove(_ name: String, _ reader: inout IMAPReader, uid: Bool) throws(IMAPParseError) -> IMAPCommand
    {
        try reader.space()
        let set = try Self.sequenceSet(&reader)
        try reader.space()
        let mailbox = try Self.mailbox(&reader)
        return name == "COPY" ? .copy(set, mailbox, uid: uid) : .move(set, mailbox, uid: uid)
    }

    /// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`:
    /// `(["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`; the only
    /// modifier is CONDSTORE's `UNCHANGEDSINCE mod-sequence-valzer`.
    static func store(_ reader: inout IMAPReader, uid: Bool) throws(IMAPParseError) -> IMAPCommand {
        try reader.space()
        let set = try Self.sequenceSet(&reader)
        try reader.space()
        var unchangedSince: UInt64?
        if reader.peek() == UInt8(ascii: "(") {
            let modifiers = try reader.parenthesized(allowEmpty: false) {
                (reader: inout IMAPReader) throws(IMAPParseError) -> UInt64 in
                let word = try reader.atom().uppercased()
                guard word == "UNCHANGEDSINCE" else {
                    throw IMAPParseError("unknown STORE modifier \(Self.shown(word))")
                }
                try reader.space()
                return try reader.modSequence(zero: true)
            }
            guard modifiers.count == 1 else { throw IMAPParseError("UNCHANGEDSINCE given twice") }
            unchangedSince = modifiers[0]
            try reader.space()
        }
        let operation: IMAPStore.Operation =
            reader.take(UInt8(ascii: "+")) ? .add : reader.take(UInt8(ascii: "-")) ? .remove : .replace
        let item = try reader.atom().uppercased()
        guard item == "FLAGS" || item == "FLAGS.SILENT" else { throw IMAPParseError("STORE takes FLAGS") }
        try reader.space()
        var flags: [IMAPFlag]
        if reader.peek() == UInt8(ascii: "(") {
            flags = try Self.flagList(&reader)
        } else {
            flags = [try Self.flag(&reader)]
            while reader.take(UInt8(ascii: " ")) { flags.append(try Self.flag(&reader)) }
        }
        return .store(
            set,
            IMAPStore(
                operation: operation,
                silent: item == "FLAGS.SILENT",
                flags: flags,
                unchangedSince: unchangedSince
            ),
            uid: uid
        )
    }

    /// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal` (or a literal8,
    /// BINARY, RFC 3516).
    static func append(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPAppend {
        try reader.space()
        let mailbox = try Self.mailbox(&reader)
        try reader.space()
        var flags: [IMAPFlag] = []
        if reader.peek() == UInt8(ascii: "(") {
            flags = try Self.flagList(&reader)
            try reader.space()
        }
        var date: IMAPDateTime?
        if reader.peek() == UInt8(ascii: "\"") {
            date = try Self.dateTime(&reader)
            try reader.space()
        }
        switch try reader.literal() {
        case .bytes(let bytes, let binary):
            return IMAPAppend(
                mailbox: mailbox,
                flags: flags,
                internalDate: date,
                size: UInt64(bytes.count),
                binary: binary,
                message: bytes
            )
        case .streamed(let size, let binary):
            return IMAPAppend(
                mailbox: mailbox,
                flags: flags,
                internalDate: date,
                size: size,
                binary: binary,
                message: nil
            )
        }
    }

    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`.
    static func list(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPListCommand {
        try reader.space()
        var selection: [IMAPListCommand.Selection] = []
        if reader.peek() == UInt8(ascii: "(") {
            selection = try reader.parenthesized { (reader: inout IMAPReader) throws(IMAPParseError) in
                let word = try reader.atom().uppercased()
                guard let option = IMAPListCommand.Selection(rawValue: word) else {
                    throw IMAPParseError("unknown LIST selection option \(Self.shown(word))")
                }
                return option
            }
            try reader.space()
        }
        // The reference may be empty (`""`), unlike a mailbox.
        let reference = IMAPMailboxName(try reader.astring())
        try Self.checkName(reference.bytes)
        try reader.space()
        let patterns: [[UInt8]]
        if reader.peek() == UInt8(ascii: "(") {
            patterns = try reader.parenthesized(allowEmpty: false) {
                (reader: inout IMAPReader) throws(IMAPParseError) in
                try Self.listMailbox(&reader)
            }
        } else {
            patterns = [try Self.listMailbox(&reader)]
        }
        var returnOptions: [IMAPListCommand.ReturnOption] = []
        if reader.take(UInt8(ascii: " ")) {
            guard reader.takeWord("RETURN") else { throw IMAPParseError("expected RETURN") }
            try reader.space()
            returnOptions = try reader.parenthesized { (reader: inout IMAPReader) throws(IMAPParseError) in
                let word = try reader.atom().uppercased()
                switch word {
                case "SUBSCRIBED": return .subscribed
                case "CHILDREN": return .children
                case "SPECIAL-USE": return .specialUse
                case "STATUS":
                    try reader.space()
                    return .status(try Self.statusItems(&reader))
                default: throw IMAPParseError("unknown LIST return option \(Self.shown(word))")
                }
            }
        }
        return IMAPListCommand(
            selection: selection,
            reference: reference,
            patterns: patterns,
            returnOptions: returnOptions
        )
    }

    /// `list-mailbox = 1*list-char / string`.
    static func listMailbox(_ reader: inout IMAPReader) throws(IMAPParseError) -> [UInt8] {
        if reader.isAtLiteral || reader.peek() == UInt8(ascii: "\"") {
            let pattern = try reader.string()
            try Self.checkName(pattern)
            return pattern
        }
        let bytes = reader.run(while: IMAPReader.isListChar)
        guard !bytes.isEmpty else { throw IMAPParseError("expected a mailbox pattern") }
        return bytes
    }

    // MARK: - Dates

    /// `date = date-text / DQUOTE date-text DQUOTE`, `date-text = date-day "-" date-month "-"
    /// date-year`.
    static func date(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPDate {
        let quoted = reader.take(UInt8(ascii: "\""))
        let day = try reader.number()
        try reader.expect(UInt8(ascii: "-"), "-")
        let month = try Self.month(&reader)
        try reader.expect(UInt8(ascii: "-"), "-")
        let year = try reader.number()
        if quoted { try reader.expect(UInt8(ascii: "\""), "a closing quote") }
        return try Self.checkedDate(year: Int(year), month: month, day: Int(day))
    }

    static func month(_ reader: inout IMAPReader) throws(IMAPParseError) -> Int {
        for (index, name) in MessageDate.monthNames.enumerated() where reader.takeText(name) { return index + 1 }
        throw IMAPParseError("expected a month (Jan, Feb, ...)")
    }

    static func checkedDate(year: Int, month: Int, day: Int) throws(IMAPParseError) -> IMAPDate {
        let lengths = [
            31, year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
        ]
        guard (1...9999).contains(year), (1...lengths[month - 1]).contains(day) else {
            throw IMAPParseError("no such date")
        }
        return IMAPDate(year: year, month: month, day: day)
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`.
    static func dateTime(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPDateTime {
        try reader.expect(UInt8(ascii: "\""), "a date-time")
        _ = reader.take(UInt8(ascii: " "))  // date-day-fixed: a space before a one-digit day
        let day = try reader.number()
        try reader.expect(UInt8(ascii: "-"), "-")
        let month = try Self.month(&reader)
        try reader.expect(UInt8(ascii: "-"), "-")
        let year = try reader.number()
        let date = try Self.checkedDate(year: Int(year), month: month, day: Int(day))
        try reader.space()
        let hour = try reader.number()
        try reader.expect(UInt8(ascii: ":"), ":")
        let minute = try reader.number()
        try reader.expect(UInt8(ascii: ":"), ":")
        let second = try reader.number()
        guard hour < 24, minute < 60, second < 61 else { throw IMAPParseError("no such time") }
        try reader.space()
        let sign: Int = reader.take(UInt8(ascii: "+")) ? 1 : reader.take(UInt8(ascii: "-")) ? -1 : 0
        let zone = try reader.number()
        guard sign != 0, zone <= 2359, zone % 100 < 60 else { throw IMAPParseError("a zone is +hhmm or -hhmm") }
        try reader.expect(UInt8(ascii: "\""), "a closing quote")
        return IMAPDateTime(
            year: date.year,
            month: date.month,
            day: date.day,
            hour: Int(hour),
            minute: Int(minute),
            second: Int(second),
            zone: sign * (Int(zone) / 100 * 60 + Int(zone) % 100)
        )
    }
}
