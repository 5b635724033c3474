/// Our users' mailboxes: the seam a mailbox engine implements. `MessageStore` is the embedded
/// engine (a Maildir per address, shared safely with Dovecot and mutt); a PostgreSQL engine will
/// be another. The local courier reaches the mailboxes only through this, and the intake through
/// `MessageStoring`, which commits to the mailboxes and the queue in one step.
///
/// Delivery is all that Petrel's callers need today. The IMAP server will add what it needs
/// here (listing a user's folders, reading a message, flags, UIDs) as further requirements,
/// which the embedded engine implements beside `deliver`: delivery's callers do not change.
public protocol MailboxStore: Sendable {
    /// Delivers a message (its header complete, `Return-Path` first) into these mailboxes
    /// (canonical addresses, each once); durable in every one of them when it returns. The
    /// content may come from any queue engine; `id` names the message in file names and logs.
    func deliver(_ content: any MessageContent, id: String, to mailboxes: [String]) async throws(StoreError)
}

extension MessageStore: MailboxStore {}
