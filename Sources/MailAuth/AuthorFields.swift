import MailCore

/// What a receiver that judges a message by its author must be able to read: a well-formed
/// header section with exactly one From field (RFC 5322 §3.6) whose every address has a domain.
///
/// DMARC protects the From domain a mail reader shows. A message with two From fields, a From
/// that cannot be read, or a header section that ends early at a line which is no field (after
/// which a mail reader may show more fields, a second From or a forged Authentication-Results
/// among them) cannot be judged as the reader will show it; RFC 9989 leaves such messages to the
/// receiver's judgment, and Petrel refuses them rather than deliver what it could not check
/// (Gmail does the same for a missing or invalid From).
public enum AuthorFields {
    public enum Problem: Hashable, Sendable, CustomStringConvertible {
        /// The header section ended at this line, which is not a header field.
        case malformedHeader(line: Int)
        case noFrom
        case severalFrom(Int)
        /// A From field whose value is no list of addresses with domains.
        case unreadableFrom(String)

        public var description: String {
            switch self {
            case .malformedHeader(let line):
                return "line \(line) of the header section is not a header field"
            case .noFrom:
                return "the message has no From field"
            case .severalFrom(let count):
                return "the message has \(count) From fields"
            case .unreadableFrom(let value):
                return "the From field \"\(Self.printable(value))\" has no readable address"
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
        guard addresses(of: from[0]) != nil else { return .unreadableFrom(from[0].value) }
        return nil
    }

    /// Every address of a mailbox-list field (From, Sender), each with a domain, read strictly
    /// (`AddressList.mailboxes`); nil when the field cannot be read one way only.
    public static func addresses(of field: HeaderField) -> [String]? {
        guard let addresses = AddressList.mailboxes(in: field.value), !addresses.isEmpty,
            addresses.allSatisfy({ AddressList.domain(of: $0) != nil })
        else { return nil }
        return addresses
    }
}
