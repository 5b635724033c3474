import MailCore

/// The canonical form of a local mailbox or alias address: `local@domain`, lower case.
///
/// Stricter than the SMTP grammar because the address names a directory on disk: a dot-atom
/// local part without "/" (so `mail/<address>/` can never escape `mail/`), a domain.
public struct AccountAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let localPart: String
    public let domain: String

    public var description: String { "\(self.localPart)@\(self.domain)" }

    public init(localPart: String, domain: String) {
        self.localPart = localPart
        self.domain = domain
    }

    /// Validates and canonicalizes an address typed by an operator.
    public init(validating text: String) throws(AccountError) {
        guard let at = text.lastIndex(of: "@") else {
            throw AccountError.invalidAddress(
                text,
                "an address needs a local part and a domain, like alice@example.com"
            )
        }
        let local = String(text[..<at])
        let domainText = String(text[text.index(after: at)...])
        guard let domain = Domain(domainText) else {
            throw AccountError.invalidAddress(text, "\(domainText) is not a valid domain")
        }
        guard Mailbox(local + "@" + domainText) != nil, !local.hasPrefix("\""), !local.contains("/") else {
            throw AccountError.invalidAddress(
                text,
                "the local part must be letters, digits and ._%+-=!#$&'*?^`{|}~ without leading, trailing or double dots"
            )
        }
        guard text.utf8.count <= 254 else { throw AccountError.invalidAddress(text, "the address is too long") }
        self.localPart = local.lowercased()
        self.domain = domain.canonical
    }

    /// The canonical address of an SMTP mailbox, or nil when it could not be one of ours
    /// (an address literal or a quoted local part that is not a dot-string).
    public init?(_ mailbox: Mailbox) {
        guard case .domain(let domain) = mailbox.host, !mailbox.localPart.contains("/"),
            Mailbox(mailbox.localPart + "@" + domain.name) != nil
        else { return nil }
        self.localPart = mailbox.localPart.lowercased()
        self.domain = domain.canonical
    }

    public var mailbox: Mailbox {
        Mailbox(localPart: self.localPart, host: .domain(Domain(self.domain)!))
    }

    public static func < (lhs: AccountAddress, rhs: AccountAddress) -> Bool {
        (lhs.domain, lhs.localPart) < (rhs.domain, rhs.localPart)
    }
}

/// Operator-facing errors of account management; the text says what to do.
public enum AccountError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidAddress(String, String)
    case domainNotServed(String, served: [String])
    case alreadyExists(String)
    case notFound(String)
    case invalidAliasTarget(String, String)

    public var description: String {
        switch self {
        case .invalidAddress(let address, let why):
            return "invalid address '\(address)': \(why)"
        case .domainNotServed(let domain, let served):
            let list = served.isEmpty ? "none" : served.joined(separator: ", ")
            return
                "\(domain) is not one of this server's domains (\(list)); add it to 'domains' in the configuration first"
        case .alreadyExists(let address):
            return "\(address) already exists"
        case .notFound(let address):
            return "\(address) does not exist"
        case .invalidAliasTarget(let target, let why):
            return "cannot use '\(target)' as an alias target: \(why)"
        }
    }
}
