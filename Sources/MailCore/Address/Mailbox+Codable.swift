/// A mailbox is stored as its text (`alice@example.com`, no brackets), and read back by the same
/// parser as in RCPT TO: a file that holds anything else is refused, not half read.
extension Mailbox: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let mailbox = Mailbox(text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "not a mailbox: \(text)")
            )
        }
        self = mailbox
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}

/// A reverse path is stored as its mailbox's text, or "" for the null path (`<>`).
extension ReversePath: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if text.isEmpty {
            self = .null
        } else {
            self = .mailbox(try Mailbox(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.mailbox?.description ?? "")
    }
}
