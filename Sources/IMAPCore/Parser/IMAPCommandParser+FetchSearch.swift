extension IMAPCommandParser {
    // MARK: - FETCH

    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    /// "(" fetch-att *(SP fetch-att) ")")`.
    static func fetch(_ reader: inout IMAPReader, uid: Bool) throws(IMAPParseError) -> IMAPCommand {
        try reader.space()
        let set = try Self.sequenceSet(&reader)
        try reader.space()
        var items: [IMAPFetchItem]
        if reader.peek() == UInt8(ascii: "(") {
            items = try reader.parenthesized(allowEmpty: false) { (reader: inout IMAPReader) throws(IMAPParseError) in
                try Self.fetchItem(&reader)
            }
        } else if reader.takeWord("ALL") {
            items = IMAPFetchItem.all
        } else if reader.takeWord("FAST") {
            items = IMAPFetchItem.fast
        } else if reader.takeWord("FULL") {
            items = IMAPFetchItem.full
        } else {
            items = [try Self.fetchItem(&reader)]
        }
        return .fetch(set, items, uid: uid, modifiers: try Self.fetchModifiers(&reader, uid: uid))
    }

    /// `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"`: CONDSTORE's
    /// `CHANGEDSINCE mod-sequence-value` and QRESYNC's `VANISHED`, which needs CHANGEDSINCE and
    /// UID FETCH (RFC 7162 §3.2.6).
    static func fetchModifiers(_ reader: inout IMAPReader, uid: Bool) throws(IMAPParseError) -> IMAPFetchModifiers {
        var modifiers = IMAPFetchModifiers()
        guard reader.take(UInt8(ascii: " ")) else { return modifiers }
        let words = try reader.parenthesized(allowEmpty: false) { (reader: inout IMAPReader) throws(IMAPParseError) in
            let word = try reader.atom().uppercased()
            switch word {
            case "CHANGEDSINCE":
                guard modifiers.changedSince == nil else { throw IMAPParseError("CHANGEDSINCE given twice") }
                try reader.space()
                modifiers.changedSince = try reader.modSequence()
            case "VANISHED":
                modifiers.vanished = true
            default:
                throw IMAPParseError("unknown FETCH modifier \(Self.shown(word))")
            }
            return word
        }
        guard words.count <= 2 else { throw IMAPParseError("a FETCH modifier given twice") }
        if modifiers.vanished {
            guard uid else { throw IMAPParseError("VANISHED is for UID FETCH") }
            guard modifiers.changedSince != nil else { throw IMAPParseError("VANISHED needs CHANGEDSINCE") }
        }
        return modifiers
    }

    static func fetchItem(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPFetchItem {
        // The longer names first: BODY.PEEK[ before BODY[ before BODYSTRUCTURE before BODY.
        if reader.takeText("BODY.PEEK[") {
            let section = try Self.section(&reader)
            return .bodySection(section, partial: try Self.partial(&reader), peek: true)
        }
        if reader.takeText("BODY[") {
            let section = try Self.section(&reader)
            return .bodySection(section, partial: try Self.partial(&reader), peek: false)
        }
        if reader.takeText("BINARY.PEEK[") {
            let part = try Self.binaryPart(&reader)
            return .binary(part: part, partial: try Self.partial(&reader), peek: true)
        }
        if reader.takeText("BINARY.SIZE[") { return .binarySize(part: try Self.binaryPart(&reader)) }
        if reader.takeText("BINARY[") {
            let part = try Self.binaryPart(&reader)
            return .binary(part: part, partial: try Self.partial(&reader), peek: false)
        }
        let word = try reader.atom().uppercased()
        switch word {
        case "ENVELOPE": return .envelope
        case "FLAGS": return .flags
        case "INTERNALDATE": return .internalDate
        case "RFC822.SIZE": return .rfc822Size
        case "RFC822": return .rfc822
        case "RFC822.HEADER": return .rfc822Header
        case "RFC822.TEXT": return .rfc822Text
        case "UID": return .uid
        case "BODYSTRUCTURE": return .bodyStructure
        case "BODY": return .body
        case "MODSEQ": return .modSeq
        case "EMAILID": return .emailID
        case "THREADID": return .threadID
        case "PREVIEW":
            // `"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]`, `preview-mod = "LAZY"`
            // (RFC 8970 §7); a parenthesis that does not start with LAZY is FETCH's modifiers.
            guard reader.peek() == UInt8(ascii: " "), reader.peek(at: 1) == UInt8(ascii: "("),
                (2..<6).map({ reader.peek(at: $0).map(IMAPReader.upper) }) == Array("LAZY".utf8).map(Optional.some)
            else { return .preview(lazy: false) }
            try reader.space()
            _ = try reader.parenthesized(allowEmpty: false) { (reader: inout IMAPReader) throws(IMAPParseError) in
                guard reader.takeWord("LAZY") else { throw IMAPParseError("a PREVIEW modifier is LAZY") }
            }
            return .preview(lazy: true)
        default: throw IMAPParseError("unknown FETCH item \(Self.shown(word))")
        }
    }

    /// After `[`: `[section-spec] "]"`; `section-spec = section-msgtext / (section-part ["."
    /// section-text])`.
    static func section(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPSection {
        var part: [UInt32] = []
        while let byte = reader.peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            part.append(try reader.number(nonZero: true))
            guard part.count <= 64 else { throw IMAPParseError("a part number more than 64 levels deep") }
            guard reader.take(UInt8(ascii: ".")) else { break }
        }
        var text: IMAPSection.Text?
        if reader.peek() != UInt8(ascii: "]") {
            if reader.takeText("HEADER.FIELDS.NOT") {
                try reader.space()
                text = .headerFieldsNot(try Self.headerList(&reader))
            } else if reader.takeText("HEADER.FIELDS") {
                try reader.space()
                text = .headerFields(try Self.headerList(&reader))
            } else if reader.takeText("HEADER") {
                text = .header
            } else if reader.takeText("TEXT") {
                text = .text
            } else if !part.isEmpty, reader.takeText("MIME") {
                text = .mime
            } else {
                throw IMAPParseError("unknown section")
            }
        }
        try reader.expect(UInt8(ascii: "]"), "]")
        return IMAPSection(part: part, text: text)
    }

    /// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`.
    static func headerList(_ reader: inout IMAPReader) throws(IMAPParseError) -> [String] {
        try reader.parenthesized(allowEmpty: false) { (reader: inout IMAPReader) throws(IMAPParseError) in
            let name = try reader.astring()
            guard !name.isEmpty, name.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                throw IMAPParseError("not a header field name")
            }
            return String(decoding: name, as: UTF8.self)
        }
    }

    /// After `BINARY[`: `[section-part] "]"`.
    static func binaryPart(_ reader: inout IMAPReader) throws(IMAPParseError) -> [UInt32] {
        var part: [UInt32] = []
        if reader.peek() != UInt8(ascii: "]") {
            repeat {
                part.append(try reader.number(nonZero: true))
                guard part.count <= 64 else { throw IMAPParseError("a part number more than 64 levels deep") }
            } while reader.take(UInt8(ascii: "."))
        }
        try reader.expect(UInt8(ascii: "]"), "]")
        return part
    }

    /// `partial = "<" number64 "." nz-number64 ">"`, when next.
    static func partial(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPPartial? {
        guard reader.take(UInt8(ascii: "<")) else { return nil }
        let offset = try reader.number64()
        try reader.expect(UInt8(ascii: "."), ".")
        let length = try reader.number64()
        guard length > 0 else { throw IMAPParseError("a partial of length 0") }
        try reader.expect(UInt8(ascii: ">"), ">")
        return IMAPPartial(offset: offset, length: length)
    }

    // MARK: - SEARCH

    /// `search = "SEARCH" [search-return-opts] SP search-program`.
    static func search(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPSearch {
        try reader.space()
        var returnOptions: [IMAPSearch.ReturnOption]?
        if reader.takeWord("RETURN") {
            try reader.space()
            returnOptions = try reader.parenthesized { (reader: inout IMAPReader) throws(IMAPParseError) in
                let word = try reader.atom().uppercased()
                guard let option = IMAPSearch.ReturnOption(rawValue: word) else {
                    throw IMAPParseError("unknown SEARCH return option \(Self.shown(word))")
                }
                return option
            }
            try reader.space()
        }
        var charset: String?
        if reader.takeWord("CHARSET") {
            try reader.space()
            charset = String(decoding: try reader.astring(), as: UTF8.self).uppercased()
            try reader.space()
        }
        var keys = [try Self.searchKey(&reader, depth: 0)]
        while reader.take(UInt8(ascii: " ")) {
            keys.append(try Self.searchKey(&reader, depth: 0))
            guard keys.count <= 1_000 else { throw IMAPParseError("more than 1000 search keys") }
        }
        return IMAPSearch(returnOptions: returnOptions, charset: charset, keys: keys)
    }

    static func searchKey(_ reader: inout IMAPReader, depth: Int) throws(IMAPParseError) -> IMAPSearchKey {
        guard depth < Self.maximumSearchDepth else { throw IMAPParseError("search keys nested too deep") }
        if reader.peek() == UInt8(ascii: "(") {
            let keys = try reader.parenthesized(allowEmpty: false) {
                (reader: inout IMAPReader) throws(IMAPParseError) in
                try Self.searchKey(&reader, depth: depth + 1)
            }
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if let byte = reader.peek(),
            byte == UInt8(ascii: "*") || (byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9"))
        {
            return .sequence(try Self.sequenceSet(&reader))
        }
        let word = try reader.atom().uppercased()
        func string(_ reader: inout IMAPReader) throws(IMAPParseError) -> String {
            try reader.space()
            return String(decoding: try reader.astring(), as: UTF8.self)
        }
        func date(_ reader: inout IMAPReader) throws(IMAPParseError) -> IMAPDate {
            try reader.space()
            return try Self.date(&reader)
        }
        switch word {
        case "ALL": return .all
        case "ANSWERED": return .flag(.answered)
        case "DELETED": return .flag(.deleted)
        case "DRAFT": return .flag(.draft)
        case "FLAGGED": return .flag(.flagged)
        case "SEEN": return .flag(.seen)
        case "UNANSWERED": return .notFlag(.answered)
        case "UNDELETED": return .notFlag(.deleted)
        case "UNDRAFT": return .notFlag(.draft)
        case "UNFLAGGED": return .notFlag(.flagged)
        case "UNSEEN": return .notFlag(.seen)
        case "NEW": return .new
        case "OLD": return .old
        case "RECENT": return .recent
        case "KEYWORD", "UNKEYWORD":
            try reader.space()
            let flag = IMAPFlag(try reader.atom())
            return word == "KEYWORD" ? .flag(flag) : .notFlag(flag)
        case "BCC", "CC", "FROM", "SUBJECT", "TO": return .addressOrSubject(field: word, try string(&reader))
        case "BODY": return .body(try string(&reader))
        case "TEXT": return .text(try string(&reader))
        case "HEADER":
            let field = try string(&reader)
            return .header(field, try string(&reader))
        case "BEFORE": return .before(try date(&reader))
        case "ON": return .on(try date(&reader))
        case "SINCE": return .since(try date(&reader))
        case "SENTBEFORE": return .sentBefore(try date(&reader))
        case "SENTON": return .sentOn(try date(&reader))
        case "SENTSINCE": return .sentSince(try date(&reader))
        case "LARGER", "SMALLER":
            try reader.space()
            let size = try reader.number64()
            return word == "LARGER" ? .larger(size) : .smaller(size)
        case "UID":
            try reader.space()
            return .uid(try Self.sequenceSet(&reader))
        case "EMAILID", "THREADID":
            // OBJECTID (RFC 8474 §6): `objectid = 1*255(ALPHA / DIGIT / "_" / "-")`.
            try reader.space()
            let id = try reader.atom()
            guard id.utf8.count <= 255, id.utf8.allSatisfy({ IMAPReader.isObjectIDChar($0) }) else {
                throw IMAPParseError("an object id is 1 to 255 letters, digits, _ and -")
            }
            return word == "EMAILID" ? .emailID(id) : .threadID(id)
        case "MODSEQ":
            // `MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer`; the entry (a
            // flag's own MODSEQ) is read and not used: one MODSEQ per message stands for all.
            try reader.space()
            if reader.peek() == UInt8(ascii: "\"") {
                let entry = try reader.string()
                guard entry.starts(with: Array("/flags/".utf8)) else {
                    throw IMAPParseError("unknown MODSEQ entry name")
                }
                try reader.space()
                let type = try reader.atom().lowercased()
                guard ["priv", "shared", "all"].contains(type) else {
                    throw IMAPParseError("a MODSEQ entry type is priv, shared or all")
                }
                try reader.space()
            }
            return .modSeq(try reader.modSequence(zero: true))
        case "NOT":
            try reader.space()
            return .not(try Self.searchKey(&reader, depth: depth + 1))
        case "OR":
            try reader.space()
            let first = try Self.searchKey(&reader, depth: depth + 1)
            try reader.space()
            return .or(first, try Self.searchKey(&reader, depth: depth + 1))
        default:
            throw IMAPParseError("unknown search key \(Self.shown(word))")
        }
    }
}
