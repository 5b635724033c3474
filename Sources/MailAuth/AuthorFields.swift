import MailCore

/// What a receiver that judges a message by its author must be able to read: a well-formed
/// header section with exactly one From field (RFC 5322 §3.6) whose every address has a domain.
/// This is the one place author fields are read: the port-25 rule, the submission rule, DMARC
/// and the DKIM signer all read them here, so they cannot disagree.
///
/// DMARC protects the From domain a mail reader shows. A message with two From fields, a From
/// that cannot be read one way only, or a header section that ends early at a line which is no
/// field (after which a mail reader may show more fields, a second From or a forged
/// Authentication-Results among them) cannot be judged as the reader will show it; RFC 9989
/// leaves such messages to the receiver's judgment, and Petrel refuses them rather than deliver
/// what it could not check (Gmail does the same for a missing or invalid From).
public enum AuthorFields {
    public enum Problem: Error, Hashable, Sendable, CustomStringConvertible {
        /// The header section ended at this line, which is not a header field.
        case malformedHeader(line: Int)
        case noFrom
        case severalFrom(Int)
        /// A From (or Sender) field whose value is no mailbox-list with domains.
        case unreadable(field: String, value: String)

        public var description: String {
            switch self {
            case .malformedHeader(let line):
                return "line \(line) of the header section is not a header field"
            case .noFrom:
                return "the message has no From field"
            case .severalFrom(let count):
                return "the message has \(count) From fields"
            case .unreadable(let field, let value):
                return "the \(field) field \"\(Self.printable(value))\" has no readable address"
            }
        }

        /// At most 80 characters of a header value for a reply line, which is ASCII: anything but
        /// printable ASCII (and the quote that delimits it) becomes "?".
        static func printable(_ value: String) -> String {
            String(
                value.unicodeScalars.prefix(80).map {
                    (0x20...0x7E).contains($0.value) && $0 != "\"" ? Character($0) : "?"
                }
            )
        }
    }

    /// The first problem with the message's author fields, or nil when there is none.
    public static func problem(header: HeaderSection, malformedLine: Int?) -> Problem? {
        if let line = malformedLine { return .malformedHeader(line: line) }
        let from = header.fields(named: "From")
        guard !from.isEmpty else { return .noFrom }
        guard from.count == 1 else { return .severalFrom(from.count) }
        guard addresses(in: from[0].value) != nil else { return .unreadable(field: "From", value: from[0].value) }
        return nil
    }

    /// What a submission server makes of a logged-in user's header (RFC 6409 §8): the addresses
    /// the user must be allowed to send as (every one in From and Sender, with its field's name),
    /// and which of From, Date and Message-ID to add because they are missing.
    public struct Submission: Hashable, Sendable {
        public struct Sender: Hashable, Sendable {
            public var field: String
            public var address: String
        }

        public var senders: [Sender]
        public var addFrom: Bool
        public var addDate: Bool
        public var addMessageID: Bool
    }

    /// The submission rule: the header section must be well formed; a missing From is added (as
    /// the user), but a From or Sender that is there must be one readable field.
    public static func submission(header: HeaderSection, malformedLine: Int?) -> Result<Submission, Problem> {
        if let line = malformedLine { return .failure(.malformedHeader(line: line)) }
        let from = header.fields(named: "From")
        guard from.count <= 1 else { return .failure(.severalFrom(from.count)) }
        var senders: [Submission.Sender] = []
        for field in from + header.fields(named: "Sender") {
            let name = field.hasName("From") ? "From" : "Sender"
            guard let addresses = addresses(in: field.value) else {
                return .failure(.unreadable(field: name, value: field.value))
            }
            senders += addresses.map { Submission.Sender(field: name, address: $0) }
        }
        return .success(
            Submission(
                senders: senders,
                addFrom: from.isEmpty,
                addDate: header.fields(named: "Date").isEmpty,
                addMessageID: header.fields(named: "Message-ID").isEmpty
            )
        )
    }

    /// Every address of a mailbox-list value (From, Sender), each with a domain, read strictly
    /// (`AddressList.mailboxes`); nil when it cannot be read one way only, or names no address.
    public static func addresses(in value: String) -> [String]? {
        guard let addresses = AddressList.mailboxes(in: value), !addresses.isEmpty,
            addresses.allSatisfy({ AddressList.domain(of: $0) != nil })
        else { return nil }
        return addresses
    }
}
