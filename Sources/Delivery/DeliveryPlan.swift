import MailCore

/// Where a recipient's mail goes.
public enum Destination: Hashable, Sendable, CustomStringConvertible {
    /// One of our domains: our own mailboxes.
    case local
    /// The configured smarthost, which takes all other mail.
    case relay
    /// Another domain's MX hosts (the domain, lower case).
    case domain(String)
    /// An address literal (`user@[192.0.2.1]`): not delivered to.
    case addressLiteral

    public init(of address: Mailbox, localDomains: Set<String>, relay: Bool) {
        guard case .domain(let name) = address.host else {
            self = relay ? .relay : .addressLiteral
            return
        }
        // Our domains are known by their A-labels, lower case; so are the others' queues.
        let domain = IDNA.toASCII(name.name) ?? name.canonical
        if localDomains.contains(domain) {
            self = .local
        } else {
            self = relay ? .relay : .domain(domain)
        }
    }

    public var description: String {
        switch self {
        case .local: return "our domains"
        case .relay: return "the relay"
        case .domain(let domain): return domain
        case .addressLiteral: return "an address literal"
        }
    }
}

/// Which transactions deliver a message's due recipients: one group per destination, cut into
/// transactions of at most `recipientsPerTransaction` (servers may take as few as 100 recipients
/// a transaction, RFC 5321 §4.5.3.1.8), in the order the recipients came. Our own domains are
/// one transaction whatever their number: the message is written once and linked into each
/// mailbox. Pure, so that the grouping is a table test.
public struct DeliveryPlan: Sendable {
    public struct Transaction: Hashable, Sendable {
        public var destination: Destination
        /// Indices into the envelope's recipients.
        public var indices: [Int]

        public init(destination: Destination, indices: [Int]) {
            self.destination = destination
            self.indices = indices
        }
    }

    public static let recipientsPerTransaction = 50

    public let transactions: [Transaction]

    /// - Parameter recipients: each due recipient's index in the envelope, and its address.
    public init(recipients: [(index: Int, address: Mailbox)], localDomains: Set<String>, relay: Bool) {
        var order: [Destination] = []
        var groups: [Destination: [Int]] = [:]
        for (index, address) in recipients {
            let destination = Destination(of: address, localDomains: localDomains, relay: relay)
            if groups[destination] == nil { order.append(destination) }
            groups[destination, default: []].append(index)
        }
        var transactions: [Transaction] = []
        for destination in order {
            let members = groups[destination]!
            let size = destination == .local ? members.count : Self.recipientsPerTransaction
            for start in stride(from: 0, to: members.count, by: size) {
                let end = min(start + size, members.count)
                transactions.append(Transaction(destination: destination, indices: Array(members[start..<end])))
            }
        }
        self.transactions = transactions
    }
}
