/// Why a path or mailbox failed to parse; the text goes into the SMTP reply.
public struct AddressSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { self.reason }
}

/// A strict parser for the RFC 5321 §4.1.2 path grammar, working on octets.
///
/// UTF-8 (RFC 6531 §3.3) is accepted in local parts and domains; the caller has checked
/// that the octets are valid UTF-8 and decides whether SMTPUTF8 permits them.
/// Strictness protects routing decisions: `"victim@other"@local` keeps its quoted `@`
/// inside the local part, `a%b@local` and `b!a@local` are ordinary local parts, and a
/// source route `<@relay:user@host>` is parsed and dropped (RFC 5321 Appendix C).
public struct PathParser {
    let bytes: [UInt8]
    public private(set) var index: Int

    public init(bytes: [UInt8], index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    public var atEnd: Bool { self.index >= self.bytes.count }

    /// `Reverse-path = Path / "<>"`
    public mutating func parseReversePath() throws(AddressSyntaxError) -> ReversePath {
        try self.expect(0x3C, "the address must be enclosed in <>")
        if self.peek() == 0x3E {
            self.index += 1
            return .null
        }
        let mailbox = try self.parsePathBody()
        return .mailbox(mailbox)
    }

    /// `Forward-path = Path`, plus the special `<Postmaster>` of RFC 5321 §4.1.1.3.
    public mutating func parseForwardPath() throws(AddressSyntaxError) -> ForwardPath {
        try self.expect(0x3C, "the address must be enclosed in <>")
        if self.peek() == 0x3E {
            throw AddressSyntaxError("the null path <> is not a valid recipient")
        }
        let word = Array("postmaster>".utf8)
        if self.index + word.count <= self.bytes.count,
            zip(self.bytes[self.index..<(self.index + word.count)], word).allSatisfy({
                asciiLowercased($0) == $1
            })
        {
            self.index += word.count
            return .postmaster
        }
        return .mailbox(try self.parsePathBody())
    }

    /// After "<": `[ A-d-l ":" ] Mailbox ">"`.
    private mutating func parsePathBody() throws(AddressSyntaxError) -> Mailbox {
        if self.peek() == 0x40 {
            // A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain
            repeat {
                try self.expect(0x40, "malformed source route")
                let name = self.takeDomainOctets()
                guard Domain.isValid(name) else { throw AddressSyntaxError("malformed source route") }
            } while self.skip(0x2C)
            try self.expect(0x3A, "malformed source route")
        }
        let mailbox = try self.parseMailbox()
        try self.expect(0x3E, "missing > at the end of the address")
        return mailbox
    }

    /// `Mailbox = Local-part "@" ( Domain / address-literal )`
    public mutating func parseMailbox() throws(AddressSyntaxError) -> Mailbox {
        let localPart = try self.parseLocalPart()
        guard self.skip(0x40) else {
            throw AddressSyntaxError(
                self.atEnd || self.peek() == 0x3E ? "the address has no domain" : "invalid character in the local part"
            )
        }
        if self.peek() == 0x5B {
            self.index += 1
            let start = self.index
            while let byte = self.peek(), byte != 0x5D { self.index += 1 }
            guard self.skip(0x5D) else { throw AddressSyntaxError("unterminated address literal") }
            let content = String(decoding: self.bytes[start..<(self.index - 1)], as: UTF8.self)
            guard let literal = AddressLiteral(bracketContent: content) else {
                throw AddressSyntaxError("invalid address literal [\(content)]")
            }
            return Mailbox(localPart: localPart, host: .addressLiteral(literal))
        }
        let name = self.takeDomainOctets()
        guard !name.isEmpty else { throw AddressSyntaxError("the address has an empty domain") }
        guard let domain = Domain(String(decoding: name, as: UTF8.self)) else {
            throw AddressSyntaxError("invalid domain \(String(decoding: name, as: UTF8.self))")
        }
        return Mailbox(localPart: localPart, host: .domain(domain))
    }

    /// `Local-part = Dot-string / Quoted-string`, returned decoded.
    private mutating func parseLocalPart() throws(AddressSyntaxError) -> String {
        if self.peek() == 0x22 {
            self.index += 1
            var content: [UInt8] = []
            while true {
                guard let byte = self.peek() else { throw AddressSyntaxError("unterminated quoted local part") }
                self.index += 1
                switch byte {
                case 0x22:
                    return String(decoding: content, as: UTF8.self)
                case 0x5C:
                    // quoted-pairSMTP = %d92 %d32-126
                    guard let escaped = self.peek(), (32...126).contains(escaped) else {
                        throw AddressSyntaxError("invalid quoted pair in the local part")
                    }
                    self.index += 1
                    content.append(escaped)
                case 32...126, 0x80...0xFF:
                    // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF8-non-ascii
                    content.append(byte)
                default:
                    throw AddressSyntaxError("control character in the local part")
                }
            }
        }
        let start = self.index
        while let byte = self.peek(), PathParser.isAtext(byte) || byte == 0x2E { self.index += 1 }
        let local = Array(self.bytes[start..<self.index])
        guard !local.isEmpty else { throw AddressSyntaxError("the address has an empty local part") }
        guard PathParser.isDotString(local) else {
            throw AddressSyntaxError("a local part may not begin or end with a dot or contain two dots in a row")
        }
        return String(decoding: local, as: UTF8.self)
    }

    /// Octets that can belong to a domain; validation happens afterwards.
    private mutating func takeDomainOctets() -> ArraySlice<UInt8> {
        let start = self.index
        while let byte = self.peek(), isLetterOrDigit(byte) || byte == 0x2D || byte == 0x2E || byte >= 0x80 {
            self.index += 1
        }
        return self.bytes[start..<self.index]
    }

    /// RFC 5322 atext plus UTF8-non-ascii (RFC 6531).
    static func isAtext(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x80...0xFF: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2F, 0x3D, 0x3F, 0x5E, 0x5F, 0x60, 0x7B, 0x7C,
            0x7D, 0x7E:
            return true
        default: return false
        }
    }

    /// `Dot-string = Atom *("." Atom)`
    static func isDotString(_ bytes: some Collection<UInt8>) -> Bool {
        guard let first = bytes.first, first != 0x2E else { return false }
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == 0x2E {
                if previous == 0x2E { return false }
            } else if !isAtext(byte) {
                return false
            }
            previous = byte
        }
        return previous != 0x2E
    }

    private func peek() -> UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    private mutating func skip(_ byte: UInt8) -> Bool {
        guard self.peek() == byte else { return false }
        self.index += 1
        return true
    }

    private mutating func expect(_ byte: UInt8, _ reason: String) throws(AddressSyntaxError) {
        guard self.skip(byte) else { throw AddressSyntaxError(reason) }
    }
}
