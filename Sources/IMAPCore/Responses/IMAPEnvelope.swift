import MailCore
import NIOCore

/// FETCH's ENVELOPE (RFC 9051 §7.5.2): a message's header fields as a mail client lists them,
/// computed once from the header and written on demand.
public struct IMAPEnvelope: Hashable, Sendable {
    public var date: [UInt8]?
    public var subject: [UInt8]?
    public var from: [HeaderAddress]
    public var sender: [HeaderAddress]
    public var replyTo: [HeaderAddress]
    public var to: [HeaderAddress]
    public var cc: [HeaderAddress]
    public var bcc: [HeaderAddress]
    public var inReplyTo: [UInt8]?
    public var messageID: [UInt8]?

    public init(header: HeaderSection) {
        func value(_ name: String) -> [UInt8]? {
            guard let field = header.fields(named: name).first else { return nil }
            let unfolded = field.rawValue.filter { $0 != 0x0D && $0 != 0x0A }
            let trimmed = unfolded.drop { $0 == 0x20 || $0 == 0x09 }
            return Array(trimmed.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed())
        }
        func addresses(_ name: String) -> [HeaderAddress] {
            header.fields(named: name).first.map { HeaderAddress.parse($0.rawValue) } ?? []
        }
        self.date = value("Date")
        self.subject = value("Subject")
        self.from = addresses("From")
        // Absent or empty, Sender and Reply-To are From (RFC 9051 §7.5.2).
        let sender = addresses("Sender")
        self.sender = sender.isEmpty ? self.from : sender
        let replyTo = addresses("Reply-To")
        self.replyTo = replyTo.isEmpty ? self.from : replyTo
        self.to = addresses("To")
        self.cc = addresses("Cc")
        self.bcc = addresses("Bcc")
        self.inReplyTo = value("In-Reply-To")
        self.messageID = value("Message-ID")
    }
}

extension IMAPResponseEncoder {
    /// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
    /// env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`.
    public func writeEnvelope(_ envelope: IMAPEnvelope, into out: inout ByteBuffer) {
        out.writeString("(")
        self.writeNString(envelope.date, into: &out)
        out.writeString(" ")
        self.writeNString(envelope.subject, into: &out)
        for list in [envelope.from, envelope.sender, envelope.replyTo, envelope.to, envelope.cc, envelope.bcc] {
            out.writeString(" ")
            self.writeAddresses(list, into: &out)
        }
        out.writeString(" ")
        self.writeNString(envelope.inReplyTo, into: &out)
        out.writeString(" ")
        self.writeNString(envelope.messageID, into: &out)
        out.writeString(")")
    }

    /// `"(" 1*address ")" / nil`; a group is its start `(NIL NIL "name" NIL)`, its members and
    /// its end `(NIL NIL NIL NIL)`.
    func writeAddresses(_ addresses: [HeaderAddress], into out: inout ByteBuffer) {
        guard !addresses.isEmpty else {
            out.writeString("NIL")
            return
        }
        out.writeString("(")
        for address in addresses {
            switch address {
            case .mailbox(let mailbox):
                self.writeMailboxAddress(mailbox, into: &out)
            case .group(let name, let members):
                out.writeString("(NIL NIL ")
                self.writeNString(Array(name.utf8), into: &out)
                out.writeString(" NIL)")
                for member in members { self.writeMailboxAddress(member, into: &out) }
                out.writeString("(NIL NIL NIL NIL)")
            }
        }
        out.writeString(")")
    }

    func writeMailboxAddress(_ mailbox: HeaderMailbox, into out: inout ByteBuffer) {
        out.writeString("(")
        self.writeNString(mailbox.name.map { Array($0.utf8) }, into: &out)
        out.writeString(" ")
        self.writeNString(mailbox.route.map { Array($0.utf8) }, into: &out)
        out.writeString(" ")
        self.writeNString(Array(mailbox.localPart.utf8), into: &out)
        out.writeString(" ")
        // A local part alone (`undisclosed`) is written with a NIL host, which clients read as
        // a group's start; the mail readers' convention is an empty host name instead.
        self.writeNString(Array((mailbox.domain ?? "").utf8), into: &out)
        out.writeString(")")
    }

    /// `nstring`: NIL, or the octets quoted or as a literal.
    public func writeNString(_ bytes: [UInt8]?, into out: inout ByteBuffer) {
        guard let bytes else {
            out.writeString("NIL")
            return
        }
        self.writeString(bytes, into: &out)
    }
}
