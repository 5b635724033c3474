import MailCore

// Addresses written as string literals in tests (`recipients: ["bob@remote.test"]`). A literal
// that is not an address stops the test run at once: it is a mistake in the test itself.

extension Mailbox: ExpressibleByStringLiteral {
    public init(stringLiteral text: String) {
        guard let mailbox = Mailbox(text) else { preconditionFailure("not a mailbox: \(text)") }
        self = mailbox
    }
}

extension ReversePath: ExpressibleByStringLiteral {
    /// "" is the null path.
    public init(stringLiteral text: String) {
        self = text.isEmpty ? .null : .mailbox(Mailbox(stringLiteral: text))
    }
}
