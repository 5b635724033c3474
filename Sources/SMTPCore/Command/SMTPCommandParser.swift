import MailCore

/// Parses one command line (without its CRLF) into an `SMTPCommand`, or the reply that
/// explains why it cannot be one.
///
/// Verbs are case-insensitive (RFC 5321 §2.4). The grammar is strict where routing depends on
/// it (paths, see `PathParser`) and lenient where real clients differ harmlessly: spaces after
/// `MAIL FROM:` / `RCPT TO:` and trailing spaces are accepted, as Postfix does.
public enum SMTPCommandParser {
    public static func parse(_ line: some Collection<UInt8>) -> Result<SMTPCommand, SMTPCommandError> {
        let bytes = Array(line)
        do {
            return .success(try self.parseCommand(bytes))
        } catch {
            return .failure(error)
        }
    }

    private static func parseCommand(_ bytes: [UInt8]) throws(SMTPCommandError) -> SMTPCommand {
        // A NUL, CR or LF inside a line is never legitimate; refusing the whole line keeps a
        // bare LF from splitting one line into two commands (SMTP smuggling).
        if bytes.contains(where: { $0 == 0 || $0 == 0x0D || $0 == 0x0A }) {
            throw SMTPCommandError(.syntaxError("NUL, CR or LF inside a command line"))
        }
        if bytes.contains(where: { $0 >= 0x80 }), String(validating: bytes, as: UTF8.self) == nil {
            throw SMTPCommandError(.syntaxError("the command is not valid UTF-8"))
        }
        var verbEnd = bytes.firstIndex(of: 0x20) ?? bytes.endIndex
        let verb = String(decoding: bytes[..<verbEnd].map(uppercased), as: UTF8.self)
        // Trailing spaces are dropped; a single space separates the verb from its arguments.
        var argumentEnd = bytes.endIndex
        while argumentEnd > verbEnd, bytes[argumentEnd - 1] == 0x20 { argumentEnd -= 1 }
        if verbEnd < argumentEnd { verbEnd += 1 }
        let arguments = Array(bytes[min(verbEnd, argumentEnd)..<argumentEnd])

        switch verb {
        case "EHLO":
            return .ehlo(try self.parseHeloArgument(arguments, verb: verb))
        case "HELO":
            return .helo(try self.parseHeloArgument(arguments, verb: verb))
        case "MAIL":
            return try self.parseMail(arguments)
        case "RCPT":
            return try self.parseRcpt(arguments)
        case "DATA":
            try self.expectNoArguments(arguments, verb: verb)
            return .data
        case "BDAT":
            return try self.parseBdat(arguments)
        case "RSET":
            try self.expectNoArguments(arguments, verb: verb)
            return .rset
        case "NOOP":
            return .noop
        case "VRFY":
            guard !arguments.isEmpty else { throw SMTPCommandError(.argumentError("VRFY needs an argument")) }
            return .vrfy(String(decoding: arguments, as: UTF8.self))
        case "EXPN":
            guard !arguments.isEmpty else { throw SMTPCommandError(.argumentError("EXPN needs an argument")) }
            return .expn(String(decoding: arguments, as: UTF8.self))
        case "HELP":
            return .help
        case "QUIT":
            try self.expectNoArguments(arguments, verb: verb)
            return .quit
        case "STARTTLS":
            try self.expectNoArguments(arguments, verb: verb)
            return .startTLS
        case "AUTH":
            let words = arguments.split(separator: 0x20)
            guard (1...2).contains(words.count) else {
                throw SMTPCommandError(.argumentError("use AUTH mechanism [initial-response]"))
            }
            return .auth(
                mechanism: String(decoding: words[0].map(uppercased), as: UTF8.self),
                initialResponse: words.count == 2 ? String(decoding: words[1], as: UTF8.self) : nil
            )
        default:
            throw SMTPCommandError(.commandUnrecognized)
        }
    }

    private static func expectNoArguments(_ arguments: [UInt8], verb: String) throws(SMTPCommandError) {
        guard arguments.isEmpty else { throw SMTPCommandError(.argumentError("\(verb) takes no arguments")) }
    }

    /// `Domain / address-literal` (RFC 5321 §4.1.1.1). Real clients send host names with
    /// underscores and unqualified names, so any run of host-name characters is accepted; what is
    /// refused is anything that could break the Received header we build from it.
    private static func parseHeloArgument(_ arguments: [UInt8], verb: String) throws(SMTPCommandError) -> String {
        guard !arguments.isEmpty else {
            throw SMTPCommandError(.argumentError("\(verb) needs your host name or address literal"))
        }
        let valid: Bool
        if arguments.first == 0x5B {
            valid =
                arguments.last == 0x5D && arguments.count > 2
                && AddressLiteral(bracketContent: String(decoding: arguments.dropFirst().dropLast(), as: UTF8.self))
                    != nil
        } else {
            valid =
                arguments.allSatisfy {
                    isHostNameCharacter($0) || $0 == 0x5F  // "_"
                } && arguments.first != 0x2E
        }
        guard valid else {
            throw SMTPCommandError(.argumentError("\(verb) needs a host name or an address literal"))
        }
        return String(decoding: arguments, as: UTF8.self)
    }

    /// `"MAIL FROM:" Reverse-path [SP Mail-parameters]`
    private static func parseMail(_ arguments: [UInt8]) throws(SMTPCommandError) -> SMTPCommand {
        let start = try self.skipKeyword("FROM:", in: arguments, usage: "MAIL FROM:<address>")
        var parser = PathParser(bytes: arguments, index: start)
        let path: ReversePath
        do {
            path = try parser.parseReversePath()
        } catch {
            throw SMTPCommandError(.addressSyntaxError(error.reason, sender: true))
        }
        var parameters = MailParameters()
        var seen = Set<String>()
        for (keyword, value) in try self.parseParameters(arguments[parser.index...]) {
            guard seen.insert(keyword).inserted else {
                throw SMTPCommandError(.argumentError("\(keyword) given twice"))
            }
            switch keyword {
            case "SIZE":
                // RFC 1870: size-value ::= 1*20DIGIT
                guard let value, (1...20).contains(value.utf8.count),
                    value.utf8.allSatisfy({ (0x30...0x39).contains($0) })
                else {
                    throw SMTPCommandError(.argumentError("SIZE needs a number of octets"))
                }
                parameters.size = UInt64(value) ?? UInt64.max
            case "BODY":
                switch value?.uppercased() {
                case "7BIT": parameters.body = .sevenBit
                case "8BITMIME": parameters.body = .eightBitMIME
                case "BINARYMIME":
                    throw SMTPCommandError(
                        SMTPReply(555, EnhancedStatusCode(5, 5, 4), "BODY=BINARYMIME is not supported")
                    )
                default: throw SMTPCommandError(.argumentError("BODY must be 7BIT or 8BITMIME"))
                }
            case "SMTPUTF8":
                guard value == nil else { throw SMTPCommandError(.argumentError("SMTPUTF8 takes no value")) }
                parameters.smtpUTF8 = true
            case "AUTH":
                // RFC 4954 §5: the identity that submitted the message, as xtext; "<>" for unknown.
                // Petrel trusts only its own AUTH, so the value is checked for form and not used.
                guard value != nil else { throw SMTPCommandError(.argumentError("AUTH= needs a value")) }
            default:
                throw SMTPCommandError(.unknownParameter(keyword))
            }
        }
        return .mail(path, parameters)
    }

    /// `"RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path ) [SP Rcpt-parameters]`
    private static func parseRcpt(_ arguments: [UInt8]) throws(SMTPCommandError) -> SMTPCommand {
        let start = try self.skipKeyword("TO:", in: arguments, usage: "RCPT TO:<address>")
        var parser = PathParser(bytes: arguments, index: start)
        let path: ForwardPath
        do {
            path = try parser.parseForwardPath()
        } catch {
            throw SMTPCommandError(.addressSyntaxError(error.reason, sender: false))
        }
        // No RCPT parameters are advertised (DSN's NOTIFY and ORCPT come with DSN support).
        if let (keyword, _) = try self.parseParameters(arguments[parser.index...]).first {
            throw SMTPCommandError(.unknownParameter(keyword))
        }
        return .rcpt(path)
    }

    /// `"BDAT" SP chunk-size [ SP end-marker ]` (RFC 3030 §2).
    private static func parseBdat(_ arguments: [UInt8]) throws(SMTPCommandError) -> SMTPCommand {
        let words = arguments.split(separator: 0x20, omittingEmptySubsequences: false)
        guard (1...2).contains(words.count), let sizeWord = words.first, !sizeWord.isEmpty,
            sizeWord.allSatisfy({ (0x30...0x39).contains($0) })
        else {
            throw SMTPCommandError(.argumentError("use BDAT size [LAST]"))
        }
        var last = false
        if words.count == 2 {
            guard String(decoding: words[1].map(uppercased), as: UTF8.self) == "LAST" else {
                throw SMTPCommandError(.argumentError("use BDAT size [LAST]"))
            }
            last = true
        }
        guard let size = UInt64(String(decoding: sizeWord, as: UTF8.self)) else {
            throw SMTPCommandError(.argumentError("the chunk size is out of range"))
        }
        return .bdat(size: size, last: last)
    }

    private static func skipKeyword(
        _ keyword: String,
        in arguments: [UInt8],
        usage: String
    ) throws(SMTPCommandError)
        -> Int
    {
        let expected = Array(keyword.utf8)
        guard arguments.count >= expected.count, zip(arguments, expected).allSatisfy({ uppercased($0) == $1 }) else {
            throw SMTPCommandError(.argumentError("use \(usage)"))
        }
        var index = expected.count
        while index < arguments.count, arguments[index] == 0x20 { index += 1 }
        return index
    }

    /// `esmtp-param *(SP esmtp-param)`; `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`,
    /// `esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii)`. Keywords come back upper case.
    private static func parseParameters(_ bytes: ArraySlice<UInt8>) throws(SMTPCommandError) -> [(String, String?)] {
        guard !bytes.isEmpty else { return [] }
        guard bytes.first == 0x20 else {
            throw SMTPCommandError(.argumentError("unexpected text after the address"))
        }
        var result: [(String, String?)] = []
        for word in bytes.split(separator: 0x20) {
            let equals = word.firstIndex(of: 0x3D)
            let keyword = word[..<(equals ?? word.endIndex)]
            guard let first = keyword.first, isLetterOrDigit(first),
                keyword.allSatisfy({ isLetterOrDigit($0) || $0 == 0x2D })
            else {
                throw SMTPCommandError(.argumentError("malformed parameter"))
            }
            var value: String?
            if let equals {
                let valueBytes = word[(equals + 1)...]
                guard !valueBytes.isEmpty,
                    valueBytes.allSatisfy({ (33...60).contains($0) || (62...126).contains($0) || $0 >= 0x80 })
                else {
                    throw SMTPCommandError(.argumentError("malformed parameter value"))
                }
                value = String(decoding: valueBytes, as: UTF8.self)
            }
            result.append((String(decoding: keyword.map(uppercased), as: UTF8.self), value))
        }
        return result
    }
}

@inline(__always) private func uppercased(_ byte: UInt8) -> UInt8 { (0x61...0x7A).contains(byte) ? byte - 0x20 : byte }
@inline(__always) private func isLetterOrDigit(_ byte: UInt8) -> Bool {
    (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
}
@inline(__always) private func isHostNameCharacter(_ byte: UInt8) -> Bool {
    isLetterOrDigit(byte) || byte == 0x2D || byte == 0x2E || byte >= 0x80
}
