/// An address of a header field as a mail reader shows it (RFC 5322 §3.4): a mailbox with its
/// display name, or a group of them. Read leniently, as readers must (obsolete routes, comments,
/// unquoted dots in names), and boundedly: what the reader cannot make sense of is skipped, and
/// at most `maximumAddresses` come out of one field.
public enum HeaderAddress: Hashable, Sendable {
    case mailbox(HeaderMailbox)
    case group(name: String, members: [HeaderMailbox])

    public static let maximumAddresses = 1_000

    /// The addresses in a field's value (unfolded or not).
    public static func parse(_ value: some Collection<UInt8>) -> [HeaderAddress] {
        var reader = AddressReader(Array(value))
        var result: [HeaderAddress] = []
        var count = 0
        while !reader.atEnd, count < Self.maximumAddresses {
            let before = reader.index
            if let address = reader.address() {
                if case .group(_, let members) = address { count += members.count }
                count += 1
                result.append(address)
            }
            reader.skipCFWS()
            if !reader.take(UInt8(ascii: ",")) {
                // Not a separator: skip to the next comma, so that one bad address costs only itself.
                reader.skip(past: UInt8(ascii: ","))
            }
            if reader.index == before { reader.index += 1 }
        }
        return result
    }
}

public struct HeaderMailbox: Hashable, Sendable {
    /// The display name as written (encoded-words left as they are), quotes removed.
    public var name: String?
    /// The obsolete source route (`@a,@b`), without its colon.
    public var route: String?
    public var localPart: String
    /// nil for a local part alone (`undisclosed`).
    public var domain: String?

    public init(name: String?, route: String?, localPart: String, domain: String?) {
        self.name = name
        self.route = route
        self.localPart = localPart
        self.domain = domain
    }
}

/// RFC 5322's lexical pieces over a field's value.
struct AddressReader {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var atEnd: Bool {
        var copy = self
        copy.skipCFWS()
        return copy.index >= copy.bytes.count
    }

    func peek() -> UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    mutating func take(_ byte: UInt8) -> Bool {
        guard self.peek() == byte else { return false }
        self.index += 1
        return true
    }

    mutating func skip(past byte: UInt8) {
        var inQuote = false
        while let next = self.peek() {
            self.index += 1
            if next == UInt8(ascii: "\"") { inQuote.toggle() }
            if next == UInt8(ascii: "\\") { self.index += 1 }
            if next == byte, !inQuote { return }
        }
    }

    /// White space, line ends and comments (nested, with quoted pairs).
    mutating func skipCFWS() {
        var depth = 0
        while let byte = self.peek() {
            if depth > 0 {
                if byte == UInt8(ascii: "\\") { self.index += 1 }
                if byte == UInt8(ascii: "(") { depth += 1 }
                if byte == UInt8(ascii: ")") { depth -= 1 }
            } else if byte == UInt8(ascii: "(") {
                depth = 1
            } else if byte != 0x20, byte != 0x09, byte != 0x0D, byte != 0x0A {
                return
            }
            self.index += 1
        }
    }

    static func isAtext(_ byte: UInt8) -> Bool {
        if byte >= 0x80 { return true }  // RFC 6532: UTF-8 in addresses and names
        guard byte > 0x20, byte < 0x7F else { return false }
        return !Array("()<>[]:;@\\,.\"".utf8).contains(byte)
    }

    /// An atom, a quoted string, or (leniently) a dot: one word of a phrase or local part.
    mutating func word(allowDot: Bool) -> String? {
        self.skipCFWS()
        guard let byte = self.peek() else { return nil }
        if byte == UInt8(ascii: "\"") {
            self.index += 1
            var value: [UInt8] = []
            while let next = self.peek() {
                self.index += 1
                if next == UInt8(ascii: "\"") { break }
                if next == UInt8(ascii: "\\"), let escaped = self.peek() {
                    value.append(escaped)
                    self.index += 1
                } else if next != 0x0D, next != 0x0A {
                    value.append(next)
                }
            }
            return String(decoding: value, as: UTF8.self)
        }
        let start = self.index
        while let next = self.peek(), Self.isAtext(next) || (allowDot && next == UInt8(ascii: ".")) { self.index += 1 }
        return self.index > start ? String(decoding: self.bytes[start..<self.index], as: UTF8.self) : nil
    }

    /// Words up to what is not a word: a display name, or a local part.
    mutating func phrase() -> [String] {
        var words: [String] = []
        while words.count < 256, let word = self.word(allowDot: true) { words.append(word) }
        return words
    }

    /// `mailbox / group`.
    mutating func address() -> HeaderAddress? {
        let start = self.index
        let words = self.phrase()
        self.skipCFWS()
        if self.take(UInt8(ascii: ":")), !words.isEmpty {
            // A group: display-name ":" [mailbox-list] ";".
            var members: [HeaderMailbox] = []
            while members.count < HeaderAddress.maximumAddresses {
                self.skipCFWS()
                if self.take(UInt8(ascii: ";")) || self.index >= self.bytes.count { break }
                if let member = self.mailbox() { members.append(member) }
                self.skipCFWS()
                if !self.take(UInt8(ascii: ",")) {
                    if self.take(UInt8(ascii: ";")) { break }
                    self.skip(past: UInt8(ascii: ","))
                }
            }
            return .group(name: words.joined(separator: " "), members: members)
        }
        self.index = start
        return self.mailbox().map { .mailbox($0) }
    }

    /// `name-addr / addr-spec`.
    mutating func mailbox() -> HeaderMailbox? {
        let start = self.index
        let words = self.phrase()
        self.skipCFWS()
        if self.take(UInt8(ascii: "<")) {
            var mailbox = self.addrSpec(until: UInt8(ascii: ">"))
            _ = self.take(UInt8(ascii: ">"))
            mailbox?.name = words.isEmpty ? nil : words.joined(separator: " ")
            return mailbox
        }
        self.index = start
        return self.addrSpec(until: nil)
    }

    /// `[route ":"] local-part ["@" domain]`, up to `end` when given.
    mutating func addrSpec(until end: UInt8?) -> HeaderMailbox? {
        self.skipCFWS()
        var route: String?
        if self.peek() == UInt8(ascii: "@"), end != nil {
            let start = self.index
            while let byte = self.peek(), byte != UInt8(ascii: ":"), byte != end { self.index += 1 }
            if self.take(UInt8(ascii: ":")) {
                route = String(decoding: self.bytes[start..<(self.index - 1)], as: UTF8.self).filter {
                    !$0.isWhitespace
                }
            } else {
                self.index = start
            }
        }
        let local = self.phrase().joined()
        self.skipCFWS()
        var domain: String?
        if self.take(UInt8(ascii: "@")) {
            self.skipCFWS()
            if self.take(UInt8(ascii: "[")) {
                let start = self.index
                while let byte = self.peek(), byte != UInt8(ascii: "]") { self.index += 1 }
                domain = "[" + String(decoding: self.bytes[start..<self.index], as: UTF8.self) + "]"
                _ = self.take(UInt8(ascii: "]"))
            } else {
                domain = self.phrase().joined()
            }
        }
        if let end {
            // Whatever else is inside the angle brackets is skipped.
            while let byte = self.peek(), byte != end { self.index += 1 }
        }
        guard !local.isEmpty || domain != nil else { return nil }
        return HeaderMailbox(name: nil, route: route, localPart: local, domain: domain)
    }
}
