import MailCore

/// An SPF record (RFC 7208 §4.6, §12 ABNF), parsed whole before anything is evaluated: a
/// syntax error anywhere makes the record a `permerror` (§4.6), whatever comes before it.
public struct SPFRecord: Hashable, Sendable {
    public enum Qualifier: Character, Hashable, Sendable {
        case pass = "+"
        case fail = "-"
        case softfail = "~"
        case neutral = "?"

        var result: SPFResult {
            switch self {
            case .pass: return .pass
            case .fail: return .fail
            case .softfail: return .softfail
            case .neutral: return .neutral
            }
        }
    }

    public enum Mechanism: Hashable, Sendable {
        case all
        case include(MacroString)
        case a(MacroString?, ipv4Prefix: Int, ipv6Prefix: Int)
        case mx(MacroString?, ipv4Prefix: Int, ipv6Prefix: Int)
        case ptr(MacroString?)
        case ip4(IPAddress, prefix: Int)
        case ip6(IPAddress, prefix: Int)
        case exists(MacroString)

        /// The terms that cost a DNS query and count towards the limit of 10 (§4.6.4).
        var queriesDNS: Bool {
            switch self {
            case .include, .a, .mx, .ptr, .exists: return true
            case .all, .ip4, .ip6: return false
            }
        }
    }

    public struct Directive: Hashable, Sendable {
        public var qualifier: Qualifier
        public var mechanism: Mechanism
        /// The term as written, for the reason given with the result.
        public var text: String
    }

    public var directives: [Directive]
    public var redirect: MacroString?
    public var explanation: MacroString?

    /// Whether a TXT record's text is an SPF record at all: "v=spf1" followed by a space or the
    /// end (§4.5), in any case.
    public static func isSPF(_ text: [UInt8]) -> Bool {
        let version = Array("v=spf1".utf8)
        guard text.count >= version.count,
            zip(text.prefix(version.count), version).allSatisfy({ asciiLowercased($0) == $1 })
        else { return false }
        return text.count == version.count || text[version.count] == 0x20
    }

    public init(parsing text: [UInt8]) throws(SPFSyntaxError) {
        guard Self.isSPF(text) else { throw SPFSyntaxError("not an SPF record") }
        // §3.1 / §4.6.1: ASCII only, terms separated by spaces (and nothing else).
        if let bad = text.first(where: { $0 > 0x7E || ($0 < 0x21 && $0 != 0x20) }) {
            throw SPFSyntaxError("the record has a character outside printable ASCII (0x\(String(bad, radix: 16)))")
        }
        let terms = String(decoding: text, as: UTF8.self).split(separator: " ").dropFirst()
        self.directives = []
        for term in terms {
            if let modifier = try Self.modifier(term) {
                switch modifier.name {
                case "redirect":
                    guard self.redirect == nil else { throw SPFSyntaxError("redirect= appears twice") }
                    self.redirect = modifier.value
                case "exp":
                    guard self.explanation == nil else { throw SPFSyntaxError("exp= appears twice") }
                    self.explanation = modifier.value
                default:
                    break  // Unknown modifiers are ignored (§6).
                }
            } else {
                self.directives.append(try Self.directive(term))
            }
        }
    }

    /// `name=value`, or nil when the term is a directive. A name is ALPHA *(ALPHA / DIGIT / "-" /
    /// "_" / ".") and a value a macro-string; redirect= and exp= take a domain-spec.
    private static func modifier(_ term: Substring) throws(SPFSyntaxError) -> (name: String, value: MacroString)? {
        guard let equals = term.firstIndex(of: "=") else { return nil }
        let name = term[..<equals]
        guard let first = name.utf8.first, isLetter(first),
            name.utf8.allSatisfy({ isLetter($0) || isDigit($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else {
            // Something like "a:x=y" is a directive whose domain-spec has an "=" in it.
            if term.contains(":") || term.contains("/") { return nil }
            throw SPFSyntaxError("\"\(term)\" is not a valid modifier")
        }
        let lowered = name.lowercased()
        let value = term[term.index(after: equals)...]
        if lowered == "redirect" || lowered == "exp" {
            return (lowered, try MacroString(domainSpec: value))
        }
        return (lowered, try MacroString(parsing: value))
    }

    private static func directive(_ term: Substring) throws(SPFSyntaxError) -> Directive {
        var rest = term
        var qualifier = Qualifier.pass
        if let first = rest.first, let explicit = Qualifier(rawValue: first) {
            qualifier = explicit
            rest = rest.dropFirst()
        }
        let nameEnd = rest.firstIndex(where: { $0 == ":" || $0 == "/" }) ?? rest.endIndex
        let name = rest[..<nameEnd].lowercased()
        let argument = rest[nameEnd...]
        let mechanism: Mechanism
        switch name {
        case "all":
            guard argument.isEmpty else { throw SPFSyntaxError("\"all\" takes no argument: \(term)") }
            mechanism = .all
        case "include", "exists":
            guard argument.first == ":" else { throw SPFSyntaxError("\(name) needs a domain: \(term)") }
            let spec = try MacroString(domainSpec: argument.dropFirst())
            mechanism = name == "include" ? .include(spec) : .exists(spec)
        case "a", "mx":
            let (domainPart, v4, v6) = try Self.dualCIDR(argument)
            var spec: MacroString?
            if !domainPart.isEmpty {
                guard domainPart.first == ":" else { throw SPFSyntaxError("\"\(term)\" is not a valid mechanism") }
                spec = try MacroString(domainSpec: domainPart.dropFirst())
            }
            mechanism =
                name == "a" ? .a(spec, ipv4Prefix: v4, ipv6Prefix: v6) : .mx(spec, ipv4Prefix: v4, ipv6Prefix: v6)
        case "ptr":
            if argument.isEmpty {
                mechanism = .ptr(nil)
            } else {
                guard argument.first == ":" else { throw SPFSyntaxError("\"\(term)\" is not a valid mechanism") }
                mechanism = .ptr(try MacroString(domainSpec: argument.dropFirst()))
            }
        case "ip4", "ip6":
            guard argument.first == ":" else { throw SPFSyntaxError("\(name) needs an address: \(term)") }
            var network = argument.dropFirst()
            let maximum = name == "ip4" ? 32 : 128
            var prefix = maximum
            if let slash = network.lastIndex(of: "/") {
                prefix = try Self.cidrLength(network[network.index(after: slash)...], maximum: maximum, term: term)
                network = network[..<slash]
            }
            guard let address = IPAddress(network), address.isIPv4 == (name == "ip4"),
                name == "ip6" || !network.contains(":")
            else { throw SPFSyntaxError("\"\(network)\" is not an \(name == "ip4" ? "IPv4" : "IPv6") network") }
            mechanism = name == "ip4" ? .ip4(address, prefix: prefix) : .ip6(address, prefix: prefix)
        default:
            throw SPFSyntaxError("unknown mechanism \"\(term)\"")
        }
        return Directive(qualifier: qualifier, mechanism: mechanism, text: String(term))
    }

    /// Splits `[":" domain-spec] ["/" ip4-cidr] ["//" ip6-cidr]` into its parts.
    private static func dualCIDR(_ argument: Substring) throws(SPFSyntaxError) -> (Substring, Int, Int) {
        var rest = argument
        var v4 = 32
        var v6 = 128
        // The digits at the end, and the index of the marker ("/" or "//") before them.
        func trailingDigits(after marker: String) -> Range<Substring.Index>? {
            let digits = rest.reversed().prefix(while: { $0.isASCII && $0.isNumber }).count
            guard digits > 0 else { return nil }
            let digitsStart = rest.index(rest.endIndex, offsetBy: -digits)
            guard rest[..<digitsStart].hasSuffix(marker) else { return nil }
            if marker == "/", rest[..<digitsStart].hasSuffix("//") { return nil }
            return rest.index(digitsStart, offsetBy: -marker.count)..<digitsStart
        }
        if let range = trailingDigits(after: "//") {
            v6 = try Self.cidrLength(rest[range.upperBound...], maximum: 128, term: argument)
            rest = rest[..<range.lowerBound]
        }
        if let range = trailingDigits(after: "/") {
            v4 = try Self.cidrLength(rest[range.upperBound...], maximum: 32, term: argument)
            rest = rest[..<range.lowerBound]
        }
        return (rest, v4, v6)
    }

    /// "0" or a number without leading zeros, at most `maximum` (§5.6).
    private static func cidrLength(_ digits: Substring, maximum: Int, term: Substring) throws(SPFSyntaxError) -> Int {
        guard !digits.isEmpty, digits.utf8.allSatisfy(isDigit), digits == "0" || digits.first != "0",
            digits.count <= 3, let value = Int(digits), value <= maximum
        else { throw SPFSyntaxError("bad CIDR length in \"\(term)\"") }
        return value
    }
}

public struct SPFSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// A macro-string (RFC 7208 §7.1): literal text and `%{...}` expansions, checked when parsed.
public struct MacroString: Hashable, Sendable, CustomStringConvertible {
    public enum Part: Hashable, Sendable {
        case literal(String)
        case macro(letter: Character, urlEscape: Bool, keep: Int?, reverse: Bool, delimiters: [Character])
    }

    public var parts: [Part]
    public var description: String

    /// Any macro-string, as in exp= text and unknown modifiers.
    public init(parsing text: Substring) throws(SPFSyntaxError) {
        self.description = String(text)
        self.parts = []
        var index = text.startIndex
        var literal = ""
        while index < text.endIndex {
            let character = text[index]
            index = text.index(after: index)
            guard character == "%" else {
                literal.append(character)
                continue
            }
            guard index < text.endIndex else { throw SPFSyntaxError("a lone \"%\" ends \"\(text)\"") }
            let next = text[index]
            index = text.index(after: index)
            switch next {
            case "%": literal.append("%")
            case "_": literal.append(" ")
            case "-": literal.append("%20")
            case "{":
                guard let close = text[index...].firstIndex(of: "}") else {
                    throw SPFSyntaxError("unterminated macro in \"\(text)\"")
                }
                let body = text[index..<close]
                index = text.index(after: close)
                if !literal.isEmpty {
                    self.parts.append(.literal(literal))
                    literal = ""
                }
                self.parts.append(try Self.macro(body, in: text))
            default:
                throw SPFSyntaxError("\"%\(next)\" is not a macro in \"\(text)\"")
            }
        }
        if !literal.isEmpty { self.parts.append(.literal(literal)) }
    }

    /// A domain-spec: a macro-string that ends in a macro or in "." toplabel ["."] (§7.1).
    public init(domainSpec text: Substring) throws(SPFSyntaxError) {
        try self.init(parsing: text)
        guard !text.isEmpty else { throw SPFSyntaxError("empty domain") }
        for part in self.parts {
            if case .macro(let letter, _, _, _, _) = part, "crt".contains(letter) {
                throw SPFSyntaxError("the %{\(letter)} macro is only allowed in explanation text: \"\(text)\"")
            }
        }
        if text.hasSuffix("}"), case .macro = self.parts.last { return }
        if ["%%", "%_", "%-"].contains(where: { text.hasSuffix($0) }) { return }
        var name = text
        if name.hasSuffix(".") { name = name.dropLast() }
        guard let dot = name.lastIndex(of: ".") else {
            throw SPFSyntaxError("\"\(text)\" is not a domain name (no dot before the top label)")
        }
        let top = name[name.index(after: dot)...].utf8
        let alphanumeric = top.allSatisfy { isLetter($0) || isDigit($0) || $0 == 0x2D }
        let valid =
            !top.isEmpty && alphanumeric && top.first != 0x2D && top.last != 0x2D
            && (top.contains(where: isLetter) || top.contains(0x2D))
        guard valid else { throw SPFSyntaxError("\"\(text)\" does not end in a valid top label") }
    }

    private static func macro(_ body: Substring, in text: Substring) throws(SPFSyntaxError) -> Part {
        guard let letter = body.first, "slodiphcrtvSLODIPHCRTV".contains(letter) else {
            throw SPFSyntaxError("unknown macro letter in \"\(text)\"")
        }
        var rest = body.dropFirst()
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        rest = rest.dropFirst(digits.count)
        var keep: Int?
        if !digits.isEmpty {
            guard let value = Int(digits.prefix(4)), value > 0 else {
                throw SPFSyntaxError("a macro keeps zero labels in \"\(text)\"")
            }
            keep = min(value, 128)
        }
        var reverse = false
        if rest.first == "r" || rest.first == "R" {
            reverse = true
            rest = rest.dropFirst()
        }
        guard rest.allSatisfy({ ".-+,/_=".contains($0) }) else {
            throw SPFSyntaxError("bad macro delimiters in \"\(text)\"")
        }
        return .macro(
            letter: Character(letter.lowercased()),
            urlEscape: letter.isUppercase,
            keep: keep,
            reverse: reverse,
            delimiters: Array(rest)
        )
    }
}
