import DNSCore
import PetrelSystem

/// A zone in the master-file form of RFC 1035 §5, read strictly, for `TestDNSServer`.
///
/// Enough of the format for the zones the tests serve and for what `petrel dns --format zone`
/// prints: `$ORIGIN` and `$TTL` (RFC 2308 §4), `@`, names relative to the origin or absolute,
/// a blank owner for the previous one, TTL (seconds, or BIND's `1h30m` form) and class `IN` in
/// either order, `;` comments, parentheses across lines, quoted strings with `\"`, `\\` and
/// `\DDD` escapes, and the types A, AAAA, MX, TXT, CNAME, PTR, NS, SOA, SRV, TLSA and CAA, plus
/// any type in RFC 3597's `\# LENGTH HEX` form. A line it cannot read is an error that names
/// it, never skipped: a test's zone that a real server would refuse must fail the test here too.
/// Not read: `$INCLUDE`, classes other than IN.
public struct ZoneFile: Sendable {
    /// Why a zone file cannot be read, and where.
    public struct SyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
        /// Counted from 1; for an entry over several lines, its first.
        public var line: Int
        public var reason: String
        /// The line as written.
        public var text: String

        public var description: String { "line \(self.line): \(self.reason): \(self.text)" }
    }

    /// Every record, owner names absolute, in the order of the file.
    public var records: [DNSResourceRecord]

    /// Reads `text`; `origin` is the origin until a `$ORIGIN` line changes it. Throws a
    /// `SyntaxError`.
    public init(_ text: String, origin: DNSName) throws {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func syntaxError(_ line: Int, _ reason: String) -> SyntaxError {
            SyntaxError(line: line, reason: reason, text: line - 1 < lines.count ? lines[line - 1] : "")
        }
        var origin = origin
        var defaultTTL: UInt32?
        var lastTTL: UInt32?
        var lastOwner: DNSName?
        self.records = []
        for entry in try Self.entries(text, error: syntaxError) {
            do {
                let first = entry.tokens[0]
                if !entry.blankOwner, !first.quoted, first.text.hasPrefix("$") {
                    var fields = Fields(tokens: entry.tokens.dropFirst(), origin: origin)
                    switch first.text.uppercased() {
                    case "$ORIGIN":
                        origin = try fields.name("the origin")
                    case "$TTL":
                        defaultTTL = try fields.ttl("the default TTL")
                    default:
                        throw Problem("\(first.text) is not supported")
                    }
                    try fields.end()
                    continue
                }
                var fields = Fields(tokens: entry.tokens[...], origin: origin)
                let owner: DNSName
                if entry.blankOwner {
                    // RFC 1035 §5.1: a blank owner is the previous record's.
                    guard let lastOwner else { throw Problem("no owner name, and no record before to take it from") }
                    owner = lastOwner
                } else {
                    owner = try fields.name("the owner")
                }
                // [TTL] [class] or [class] [TTL], both optional (RFC 1035 §5.1).
                var ttl: UInt32?
                var sawClass = false
                while let token = fields.tokens.first, !token.quoted {
                    if ttl == nil, let value = Self.ttl(token.text) {
                        ttl = value
                    } else if !sawClass, token.text.uppercased() == "IN" {
                        sawClass = true
                    } else if !sawClass, Self.otherClasses.contains(token.text.uppercased()) {
                        throw Problem("class \(token.text) is not served, only IN")
                    } else {
                        break
                    }
                    fields.tokens.removeFirst()
                }
                let typeToken = try fields.next("the record type")
                guard !typeToken.quoted, let type = Self.type(typeToken.text) else {
                    throw Problem("'\(typeToken.text)' is not a record type this reader knows")
                }
                if let ttl { lastTTL = ttl }
                // An omitted TTL is $TTL's (RFC 2308 §4), else the last one given (RFC 1035 §5.1).
                guard let recordTTL = ttl ?? defaultTTL ?? lastTTL else {
                    throw Problem("no TTL: give one, or a $TTL line before")
                }
                let data = try Self.recordData(type, &fields)
                try fields.end()
                self.records.append(DNSResourceRecord(name: owner, type: type, ttl: recordTTL, data: data))
                lastOwner = owner
            } catch let problem as Problem {
                throw syntaxError(entry.line, problem.reason)
            }
        }
    }

    static let otherClasses: Set<String> = ["CH", "CS", "HS", "NONE", "ANY"]

    /// CAA has no name in `DNSRecordType`; OPT is no zone data (RFC 6891 §6.1.1).
    static func type(_ text: String) -> DNSRecordType? {
        let upper = text.uppercased()
        if upper == "CAA" { return DNSRecordType(rawValue: 257) }
        guard let type = DNSRecordType(upper), type != .opt else { return nil }
        return type
    }

    static func recordData(_ type: DNSRecordType, _ fields: inout Fields) throws -> DNSRecordData {
        // RFC 3597 §5: any type's RDATA as octets.
        if let first = fields.tokens.first, !first.quoted, first.text == "\\#" {
            fields.tokens.removeFirst()
            let length: UInt16 = try fields.number("the RDATA length")
            let octets = try Self.hex(fields.rest(), "the RDATA")
            guard octets.count == Int(length) else {
                throw Problem("\\# says \(length) octets, the data has \(octets.count)")
            }
            return .opaque(octets)
        }
        switch type {
        case .a:
            return .a(try Self.address(fields.next("the IPv4 address"), family: AF_INET, count: 4))
        case .aaaa:
            return .aaaa(try Self.address(fields.next("the IPv6 address"), family: AF_INET6, count: 16))
        case .mx:
            let preference: UInt16 = try fields.number("the MX preference")
            return .mx(preference: preference, exchange: try fields.name("the mail exchanger"))
        case .srv:
            let priority: UInt16 = try fields.number("the SRV priority")
            let weight: UInt16 = try fields.number("the SRV weight")
            let port: UInt16 = try fields.number("the SRV port")
            return .srv(priority: priority, weight: weight, port: port, target: try fields.name("the SRV target"))
        case .txt:
            let tokens = fields.rest()
            guard !tokens.isEmpty else { throw Problem("TXT needs at least one character-string") }
            return .txt(try tokens.map { try Self.characterString($0) })
        case .cname, .ptr, .ns:
            return .name(try fields.name("the \(type) target"))
        case .soa:
            let primary = try fields.name("the SOA primary name server")
            let responsible = try fields.name("the SOA responsible mailbox")
            let serial: UInt32 = try fields.number("the SOA serial")
            return .soa(
                DNSSOA(
                    primary: primary,
                    responsible: responsible,
                    serial: serial,
                    refresh: try fields.ttl("the SOA refresh"),
                    retry: try fields.ttl("the SOA retry"),
                    expire: try fields.ttl("the SOA expire"),
                    minimum: try fields.ttl("the SOA minimum")
                )
            )
        case .tlsa:
            // RFC 6698 §2.2: the association data in hex, which may be split by white space.
            let usage: UInt8 = try fields.number("the TLSA usage")
            let selector: UInt8 = try fields.number("the TLSA selector")
            let matchingType: UInt8 = try fields.number("the TLSA matching type")
            let data = try Self.hex(fields.rest(), "the TLSA association data")
            guard !data.isEmpty else { throw Problem("the TLSA association data is missing") }
            return .tlsa(usage: usage, selector: selector, matchingType: matchingType, data: data)
        case DNSRecordType(rawValue: 257):
            // CAA (RFC 8659 §4.1.1): flags, a tag of letters and digits, the value to the end.
            let flags: UInt8 = try fields.number("the CAA flags")
            let tag = try fields.next("the CAA tag")
            let tagOctets = Array(tag.text.utf8)
            guard !tag.quoted, (1...15).contains(tagOctets.count),
                tagOctets.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0 | 0x20) })
            else { throw Problem("'\(tag.text)' is not a CAA tag") }
            let value = try Self.characterString(fields.next("the CAA value"), limit: 65_000)
            return .opaque([flags, UInt8(tagOctets.count)] + tagOctets + value)
        default:
            throw Problem("give \(type) data in the RFC 3597 form \\# LENGTH HEX")
        }
    }

    /// Seconds, or BIND's units (`1w2d3h4m5s`); nil when not a TTL.
    static func ttl(_ text: String) -> UInt32? {
        let units: [UInt8: UInt64] = [0x77: 604_800, 0x64: 86_400, 0x68: 3600, 0x6D: 60, 0x73: 1]  // w d h m s
        var total: UInt64 = 0
        var number: UInt64?
        var sawUnit = false
        for byte in text.lowercased().utf8 {
            if (0x30...0x39).contains(byte) {
                let value = (number ?? 0) * 10 + UInt64(byte - 0x30)
                guard value <= UInt64(UInt32.max) else { return nil }
                number = value
            } else if let unit = units[byte], let value = number {
                total += value * unit
                guard total <= UInt64(UInt32.max) else { return nil }
                number = nil
                sawUnit = true
            } else {
                return nil
            }
        }
        if let number {
            // A bare number, or a number without a unit after units ("1h30"): only the first is a TTL.
            guard !sawUnit else { return nil }
            return UInt32(number)
        }
        return sawUnit ? UInt32(total) : nil
    }

    /// A `<character-string>` (RFC 1035 §5.1): escapes undone, at most 255 octets (§3.3).
    static func characterString(_ token: Token, limit: Int = 255) throws -> [UInt8] {
        var octets: [UInt8] = []
        var rest = Array(token.text.utf8)[...]
        while let byte = rest.popFirst() {
            guard byte == 0x5C else {
                octets.append(byte)
                continue
            }
            guard let next = rest.popFirst() else { throw Problem("a backslash ends '\(token.text)'") }
            guard (0x30...0x39).contains(next) else {
                octets.append(next)
                continue
            }
            // \DDD: a decimal octet.
            let digits = [next] + Array(rest.prefix(2))
            guard digits.count == 3, digits.allSatisfy({ (0x30...0x39).contains($0) }),
                let value = UInt8(String(decoding: digits, as: UTF8.self))
            else { throw Problem("a \\DDD escape in '\(token.text)' is not three digits up to 255") }
            octets.append(value)
            rest = rest.dropFirst(2)
        }
        guard octets.count <= limit else {
            throw Problem("a string of \(octets.count) octets, over the \(limit) a character-string may have")
        }
        return octets
    }

    static func address(_ token: Token, family: Int32, count: Int) throws -> [UInt8] {
        var octets = [UInt8](repeating: 0, count: 16)
        let parsed = octets.withUnsafeMutableBytes { inet_pton(family, token.text, $0.baseAddress) }
        guard !token.quoted, parsed == 1 else {
            throw Problem("'\(token.text)' is not an IPv\(count == 4 ? "4" : "6") address")
        }
        return Array(octets.prefix(count))
    }

    static func hex(_ tokens: [Token], _ what: String) throws -> [UInt8] {
        let digits = Array(tokens.map(\.text).joined().utf8)
        func nibble(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 0x30...0x39: return digit - 0x30
            case 0x41...0x46: return digit - 0x41 + 10
            case 0x61...0x66: return digit - 0x61 + 10
            default: return nil
            }
        }
        guard digits.count % 2 == 0, !tokens.contains(where: \.quoted) else { throw Problem("\(what) is not hex") }
        var octets: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else {
                throw Problem("\(what) is not hex")
            }
            octets.append(high << 4 | low)
        }
        return octets
    }

    // MARK: - Tokens

    /// A word of an entry: unquoted, with its backslash escapes as written (so a name keeps
    /// `\.`), or the inside of a quoted string, escapes also as written.
    struct Token {
        var text: String
        var quoted: Bool
    }

    /// One record or directive: a line, or several joined by parentheses (RFC 1035 §5.1).
    struct Entry {
        var line: Int
        /// The entry began with white space: its owner is the previous record's.
        var blankOwner: Bool
        var tokens: [Token]
    }

    static func entries(_ text: String, error: (Int, String) -> SyntaxError) throws -> [Entry] {
        let bytes = Array(text.utf8)
        var entries: [Entry] = []
        var tokens: [Token] = []
        var word: [UInt8]?
        var depth = 0
        var line = 1
        var entryLine = 1
        var blankOwner = false
        var atLineStart = true

        func endWord() {
            if let current = word {
                tokens.append(Token(text: String(decoding: current, as: UTF8.self), quoted: false))
            }
            word = nil
        }
        func endEntry() {
            if !tokens.isEmpty { entries.append(Entry(line: entryLine, blankOwner: blankOwner, tokens: tokens)) }
            tokens = []
        }

        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if atLineStart {
                // A physical line outside parentheses with nothing pending starts an entry.
                if depth == 0, tokens.isEmpty {
                    entryLine = line
                    blankOwner = byte == 0x20 || byte == 0x09
                }
                atLineStart = false
            }
            switch byte {
            case 0x0A:  // LF
                endWord()
                if depth == 0 { endEntry() }
                line += 1
                atLineStart = true
            case 0x20, 0x09, 0x0D:  // space, tab, CR
                endWord()
            case 0x3B:  // ";" to the end of the line
                endWord()
                while index + 1 < bytes.count, bytes[index + 1] != 0x0A { index += 1 }
            case 0x28:  // "("
                endWord()
                depth += 1
            case 0x29:  // ")"
                endWord()
                guard depth > 0 else { throw error(line, "a ) without its (") }
                depth -= 1
            case 0x22:  // '"': a string to the next unescaped '"', on this line
                endWord()
                var string: [UInt8] = []
                index += 1
                while index < bytes.count, bytes[index] != 0x22 {
                    guard bytes[index] != 0x0A else { throw error(line, "a quoted string that does not end") }
                    if bytes[index] == 0x5C, index + 1 < bytes.count, bytes[index + 1] != 0x0A {
                        string.append(bytes[index])
                        index += 1
                    }
                    string.append(bytes[index])
                    index += 1
                }
                guard index < bytes.count else { throw error(line, "a quoted string that does not end") }
                tokens.append(Token(text: String(decoding: string, as: UTF8.self), quoted: true))
            case 0x5C:  // "\": the next octet belongs to the word, whatever it is
                guard index + 1 < bytes.count, bytes[index + 1] != 0x0A else {
                    throw error(line, "a backslash at the end of a line")
                }
                word = (word ?? []) + [byte, bytes[index + 1]]
                index += 1
            default:
                word = (word ?? []) + [byte]
            }
            index += 1
        }
        endWord()
        guard depth == 0 else { throw error(entryLine, "a ( that is never closed") }
        endEntry()
        return entries
    }

    /// The fields of an entry, read in order.
    struct Fields {
        var tokens: ArraySlice<Token>
        let origin: DNSName

        mutating func next(_ what: String) throws -> Token {
            guard let token = self.tokens.popFirst() else { throw Problem("\(what) is missing") }
            return token
        }

        mutating func rest() -> [Token] {
            defer { self.tokens = [] }
            return Array(self.tokens)
        }

        mutating func number<Number: FixedWidthInteger>(_ what: String) throws -> Number {
            let token = try self.next(what)
            guard !token.quoted, let value = Number(token.text) else {
                throw Problem("\(what) '\(token.text)' is not a number from \(Number.min) to \(Number.max)")
            }
            return value
        }

        mutating func ttl(_ what: String) throws -> UInt32 {
            let token = try self.next(what)
            guard !token.quoted, let value = ZoneFile.ttl(token.text) else {
                throw Problem("\(what) '\(token.text)' is not a time in seconds")
            }
            return value
        }

        /// `@` is the origin; a name without its final dot is relative to the origin (RFC 1035 §5.1).
        mutating func name(_ what: String) throws -> DNSName {
            let token = try self.next(what)
            let text = token.text
            guard !token.quoted else { throw Problem("\(what) \"\(text)\" is quoted: a name is not") }
            if text == "@" { return self.origin }
            // Absolute when it ends with a dot that no backslash escapes.
            let octets = Array(text.utf8)
            let backslashes = octets.dropLast().reversed().prefix { $0 == 0x5C }.count
            let absolute = octets.last == 0x2E && backslashes % 2 == 0
            guard let name = DNSName(text),
                let full = absolute ? name : DNSName(labels: name.labels + self.origin.labels)
            else { throw Problem("\(what) '\(text)' is not a domain name") }
            return full
        }

        func end() throws {
            if let extra = self.tokens.first { throw Problem("'\(extra.text)' after the end of the record") }
        }
    }

    /// What is wrong with an entry; `init` adds the line.
    struct Problem: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
