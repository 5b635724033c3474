import MailCore

/// An address a mailbox may send as besides its own (`petrel user sender add`): a role address
/// such as `info@example.com`, or `@example.com` for every address of a domain (a system account
/// that sends for the whole domain).
public enum SenderAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    case address(AccountAddress)
    /// Canonical domain name (lower case, A-labels).
    case domain(String)

    public init(validating text: String) throws(AccountError) {
        if text.hasPrefix("@") {
            guard let domain = Domain(String(text.dropFirst())) else {
                throw AccountError.invalidAddress(text, "\(text.dropFirst()) is not a valid domain")
            }
            self = .domain(domain.canonical)
        } else {
            self = .address(try AccountAddress(validating: text))
        }
    }

    public var description: String {
        switch self {
        case .address(let address): return address.description
        case .domain(let domain): return "@" + domain
        }
    }

    /// Whether this grant covers `address` (canonical).
    public func permits(_ address: AccountAddress) -> Bool {
        switch self {
        case .address(let granted): return granted == address
        case .domain(let domain): return address.domain == domain
        }
    }

    public static func < (lhs: SenderAddress, rhs: SenderAddress) -> Bool { lhs.description < rhs.description }
}
