import MailCore

/// What the directory holds, as seen by recipient resolution. Synchronous: the SQLite store
/// answers these inside one read transaction, tests answer from dictionaries.
public protocol DirectoryLookup {
    func isMailbox(_ address: AccountAddress) throws -> Bool
    /// The targets of an alias, or nil when `address` is not an alias.
    func aliasTargets(_ address: AccountAddress) throws -> [AccountAddress]?
    /// The oldest mailbox of a domain.
    func firstMailbox(inDomain domain: String) throws -> AccountAddress?
}

/// Where mail for a recipient goes.
public enum Resolution: Hashable, Sendable {
    /// Deliver to these local mailboxes (each once).
    case mailboxes([AccountAddress])
    /// A domain we serve, but nobody by that name.
    case unknownUser
    /// Not one of our domains: relaying, which needs authentication.
    case foreignDomain
}

/// Decides where mail for an address goes: mailbox, alias (expanded, nested, loops cut),
/// subaddress (`alice+tag@` reaches `alice@`, RFC 5233), and postmaster, which every domain must
/// accept (RFC 5321 §4.5.1).
public struct RecipientResolver: Sendable {
    /// Canonical domains we receive mail for; the first is the primary one (for a bare `<Postmaster>`).
    public var domains: [String]
    /// Where postmaster@ mail goes when no mailbox or alias of that name exists.
    public var postmaster: AccountAddress?
    /// Separates a local part from its subaddress; nil disables subaddressing.
    public var recipientDelimiter: Character?

    /// Alias chains longer than this are cut (and logged by the caller as a misconfiguration).
    static let maximumAliasDepth = 10

    public init(domains: [String], postmaster: AccountAddress? = nil, recipientDelimiter: Character? = "+") {
        self.domains = domains
        self.postmaster = postmaster
        self.recipientDelimiter = recipientDelimiter
    }

    public func serves(_ domain: String) -> Bool { self.domains.contains(domain) }

    public func resolve(_ path: ForwardPath, in lookup: some DirectoryLookup) throws -> Resolution {
        switch path {
        case .postmaster:
            guard let primary = self.domains.first else { return .foreignDomain }
            return try self.resolve(AccountAddress(localPart: "postmaster", domain: primary), in: lookup)
        case .mailbox(let mailbox):
            guard case .domain(let domain) = mailbox.host, self.serves(domain.canonical) else { return .foreignDomain }
            guard let address = AccountAddress(mailbox) else { return .unknownUser }
            return try self.resolve(address, in: lookup)
        }
    }

    public func resolve(_ address: AccountAddress, in lookup: some DirectoryLookup) throws -> Resolution {
        guard self.serves(address.domain) else { return .foreignDomain }
        var found: [AccountAddress] = []
        var visited = Set<AccountAddress>()
        try self.expand(address, into: &found, visited: &visited, depth: 0, lookup: lookup)
        return found.isEmpty ? .unknownUser : .mailboxes(found)
    }

    private func expand(
        _ address: AccountAddress,
        into found: inout [AccountAddress],
        visited: inout Set<AccountAddress>,
        depth: Int,
        lookup: some DirectoryLookup
    ) throws {
        guard depth <= Self.maximumAliasDepth, visited.insert(address).inserted else { return }
        if try lookup.isMailbox(address) {
            if !found.contains(address) { found.append(address) }
            return
        }
        if let targets = try lookup.aliasTargets(address) {
            for target in targets where self.serves(target.domain) {
                try self.expand(target, into: &found, visited: &visited, depth: depth + 1, lookup: lookup)
            }
            return
        }
        if let delimiter = self.recipientDelimiter, let cut = address.localPart.firstIndex(of: delimiter),
            cut != address.localPart.startIndex
        {
            let base = AccountAddress(localPart: String(address.localPart[..<cut]), domain: address.domain)
            try self.expand(base, into: &found, visited: &visited, depth: depth, lookup: lookup)
            return
        }
        if address.localPart == "postmaster" {
            if let configured = self.postmaster, configured != address {
                let before = found.count
                try self.expand(configured, into: &found, visited: &visited, depth: depth + 1, lookup: lookup)
                if found.count > before { return }
            }
            // The domain's first mailbox, else a mailbox named postmaster@ that exists only on disk.
            let target = try lookup.firstMailbox(inDomain: address.domain) ?? address
            if !found.contains(target) { found.append(target) }
        }
    }
}
