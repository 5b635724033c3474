import NIOCore

/// Why a command could not be read: answered `tag BAD text` (or `* BAD` without a readable tag).
public struct IMAPParseError: Error, Hashable, Sendable {
    public var tag: String?
    public var text: String

    public init(tag: String? = nil, _ text: String) {
        self.tag = tag
        self.text = text
    }
}

/// Reads the tokens of RFC 9051's grammar (§9) off a command's text and literals. Each method
/// takes one production or throws, leaving the rest for the next; where the grammar allows a
/// string, a literal is taken as one.
struct IMAPReader {
    private var parts: [IMAPCommandText.Part]
    private var partIndex = 0
    private var text: [UInt8] = []
    private var position = 0

    init(_ command: IMAPCommandText) {
        self.parts = command.parts
        self.loadText()
    }

    /// Reads the text part at `partIndex` (the framer puts a text part between any two
    /// literals and after the last); none past the end.
    private mutating func loadText() {
        self.position = 0
        if self.partIndex < self.parts.count, case .text(let bytes) = self.parts[self.partIndex] {
            self.text = Array(bytes.readableBytesView)
        } else {
            self.text = []
        }
    }

    /// The next octet of command text; nil at the end of a text part (a literal, or the end).
    func peek() -> UInt8? {
        self.position < self.text.count ? self.text[self.position] : nil
    }

    func peek(at offset: Int) -> UInt8? {
        self.position + offset < self.text.count ? self.text[self.position + offset] : nil
    }

    /// Whether a literal is next (the text before it used up).
    var isAtLiteral: Bool {
        guard self.position >= self.text.count, self.partIndex + 1 < self.parts.count else { return false }
        if case .text = self.parts[self.partIndex + 1] { return false }
        return true
    }

    mutating func advance(_ count: Int = 1) {
        self.position += count
    }

    // MARK: - Punctuation

    mutating func take(_ byte: UInt8) -> Bool {
        guard self.peek() == byte else { return false }
        self.position += 1
        return true
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(IMAPParseError) {
        guard self.take(byte) else { throw IMAPParseError("expected \(what)") }
    }

    mutating func space() throws(IMAPParseError) {
        try self.expect(UInt8(ascii: " "), "a space")
    }

    /// A word of the grammar, ASCII case-insensitive, when it is next and not the start of a
    /// longer atom.
    mutating func takeWord(_ word: String) -> Bool {
        let length = word.utf8.count
        if let after = self.peek(at: length), Self.isAtomChar(after) { return false }
        return self.takeText(word)
    }

    /// Text of the grammar followed by punctuation (`BODY[`), ASCII case-insensitive.
    mutating func takeText(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard self.position + bytes.count <= self.text.count else { return false }
        for (offset, byte) in bytes.enumerated() where Self.upper(self.text[self.position + offset]) != Self.upper(byte)
        {
            return false
        }
        self.position += bytes.count
        return true
    }

    mutating func end() throws(IMAPParseError) {
        guard self.position >= self.text.count, self.partIndex >= self.parts.count - 1 else {
            throw IMAPParseError("unexpected text at the end of the command")
        }
    }

    // MARK: - Atoms and strings

    static func upper(_ byte: UInt8) -> UInt8 {
        (byte >= 0x61 && byte <= 0x7A) ? byte - 0x20 : byte
    }

    /// ATOM-CHAR: any CHAR but atom-specials: `(` `)` `{` SP, controls, `%` `*`, `"` `\`, `]`.
    static func isAtomChar(_ byte: UInt8) -> Bool {
        guard byte > 0x20, byte < 0x7F else { return false }
        switch byte {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "*"),
            UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "]"):
            return false
        default: return true
        }
    }

    /// OBJECTID's `objectid` characters (RFC 8474 §7).
    static func isObjectIDChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default: return false
        }
    }

    /// ASTRING-CHAR: an ATOM-CHAR or `]`.
    static func isAStringChar(_ byte: UInt8) -> Bool {
        Self.isAtomChar(byte) || byte == UInt8(ascii: "]")
    }

    /// list-char: an ATOM-CHAR, a wildcard or `]`.
    static func isListChar(_ byte: UInt8) -> Bool {
        Self.isAStringChar(byte) || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "*")
    }

    mutating func run(while predicate: (UInt8) -> Bool) -> [UInt8] {
        let start = self.position
        while let byte = self.peek(), predicate(byte) { self.position += 1 }
        return Array(self.text[start..<self.position])
    }

    mutating func atom() throws(IMAPParseError) -> String {
        let bytes = self.run(while: Self.isAtomChar)
        guard !bytes.isEmpty else { throw IMAPParseError("expected an atom") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `tag = 1*<any ASTRING-CHAR except "+">`.
    mutating func tag() throws(IMAPParseError) -> String {
        let bytes = self.run { Self.isAStringChar($0) && $0 != UInt8(ascii: "+") }
        guard !bytes.isEmpty else { throw IMAPParseError("expected a tag") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `astring = 1*ASTRING-CHAR / string`.
    mutating func astring() throws(IMAPParseError) -> [UInt8] {
        if self.isAtLiteral || self.peek() == UInt8(ascii: "\"") { return try self.string() }
        let bytes = self.run(while: Self.isAStringChar)
        guard !bytes.isEmpty else { throw IMAPParseError("expected a string") }
        return bytes
    }

    /// `string = quoted / literal`. Only a literal in memory: a literal8 (which may hold NUL)
    /// belongs to APPEND alone (RFC 3516 §4.3), and so does a streamed one.
    mutating func string() throws(IMAPParseError) -> [UInt8] {
        guard self.isAtLiteral else { return try self.quoted() }
        switch try self.literal() {
        case .bytes(let bytes, binary: false): return bytes
        case .bytes(_, binary: true): throw IMAPParseError("a literal8 (~{n}) where a string belongs")
        case .streamed: throw IMAPParseError("a literal too large for a string")
        }
    }

    /// `nstring = string / "NIL"`.
    mutating func nstring() throws(IMAPParseError) -> [UInt8]? {
        if self.takeWord("NIL") { return nil }
        return try self.string()
    }

    /// A literal: in memory, or (APPEND) streamed, its size only.
    enum Literal: Hashable {
        case bytes([UInt8], binary: Bool)
        case streamed(size: UInt64, binary: Bool)
    }

    mutating func literal() throws(IMAPParseError) -> Literal {
        guard self.isAtLiteral else { throw IMAPParseError("expected a literal") }
        self.partIndex += 1
        let literal: Literal
        switch self.parts[self.partIndex] {
        case .literal(let bytes, let binary): literal = .bytes(Array(bytes.readableBytesView), binary: binary)
        case .streamedLiteral(let size, let binary): literal = .streamed(size: size, binary: binary)
        case .text: throw IMAPParseError("expected a literal")
        }
        if case .bytes(let bytes, false) = literal, bytes.contains(0) {
            throw IMAPParseError("NUL in a literal; use a literal8 (~{n})")
        }
        self.partIndex += 1
        self.loadText()
        return literal
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`: any TEXT-CHAR (UTF-8 included, RFC 9051's
    /// utf8-quoted), `"` and `\` escaped by `\`.
    mutating func quoted() throws(IMAPParseError) -> [UInt8] {
        try self.expect(UInt8(ascii: "\""), "a quoted string")
        var bytes: [UInt8] = []
        while let byte = self.peek() {
            self.position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard String(validating: bytes, as: UTF8.self) != nil else {
                    throw IMAPParseError("a quoted string that is not UTF-8")
                }
                return bytes
            case UInt8(ascii: "\\"):
                guard let escaped = self.peek(), escaped == UInt8(ascii: "\"") || escaped == UInt8(ascii: "\\") else {
                    throw IMAPParseError("only \" and \\ may follow \\ in a quoted string")
                }
                self.position += 1
                bytes.append(escaped)
            case 0, 0x0D, 0x0A:
                throw IMAPParseError("a quoted string cannot contain NUL, CR or LF")
            default:
                bytes.append(byte)
            }
        }
        throw IMAPParseError("a quoted string without its closing quote")
    }

    // MARK: - Numbers

    /// `number = 1*DIGIT` within 32 bits; `nz-number` when `nonZero`.
    mutating func number(nonZero: Bool = false) throws(IMAPParseError) -> UInt32 {
        let value = try self.number64()
        guard value <= UInt64(UInt32.max) else { throw IMAPParseError("a number over 4294967295") }
        guard !nonZero || value > 0 else { throw IMAPParseError("0 where a number of 1 or more is needed") }
        return UInt32(value)
    }

    mutating func number64() throws(IMAPParseError) -> UInt64 {
        let digits = self.run { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty else { throw IMAPParseError("expected a number") }
        guard let value = LiteralSyntax.number64(digits) else { throw IMAPParseError("a number too large") }
        return value
    }

    /// `mod-sequence-value` (RFC 7162 §7): 1 to 2^63 - 1; `mod-sequence-valzer` with `zero`.
    mutating func modSequence(zero: Bool = false) throws(IMAPParseError) -> UInt64 {
        let value = try self.number64()
        guard value <= UInt64(Int64.max) else { throw IMAPParseError("a mod-sequence over 2^63 - 1") }
        guard zero || value > 0 else { throw IMAPParseError("a mod-sequence of 0") }
        return value
    }

    /// `"(" item *(SP item) ")"`, or `"()"` when `allowEmpty`.
    mutating func parenthesized<T>(
        allowEmpty: Bool = true,
        _ item: (inout IMAPReader) throws(IMAPParseError) -> T
    ) throws(IMAPParseError) -> [T] {
        try self.expect(UInt8(ascii: "("), "(")
        var items: [T] = []
        if self.take(UInt8(ascii: ")")) {
            guard allowEmpty else { throw IMAPParseError("an empty list") }
            return items
        }
        repeat {
            items.append(try item(&self))
            guard items.count <= 1_000 else { throw IMAPParseError("a list of more than 1000 items") }
        } while self.take(UInt8(ascii: " "))
        try self.expect(UInt8(ascii: ")"), ")")
        return items
    }
}
