import Accounts
import MailCore
import MailStore
import SMTPCore

/// Delivers queued messages to recipients in our own domains (`petrel sendmail`, reports to our
/// users): each address resolved as at RCPT TO (aliases expanded), the queued content (with its
/// Return-Path, as the final delivery keeps it) put into the mailboxes through the mailbox store.
public struct LocalCourier: Courier {
    let accounts: any AccountDirectory
    let resolver: RecipientResolver
    let queue: any QueueStore
    let mailboxes: any MailboxStore

    public init(
        accounts: any AccountDirectory,
        resolver: RecipientResolver,
        queue: any QueueStore,
        mailboxes: any MailboxStore
    ) {
        self.accounts = accounts
        self.resolver = resolver
        self.queue = queue
        self.mailboxes = mailboxes
    }

    public func deliver(_ parcel: Parcel) async -> CourierReport {
        var results: [DeliveryResult?] = Array(repeating: nil, count: parcel.recipients.count)
        var targets: [String] = []
        for (index, mailbox) in parcel.recipients.enumerated() {
            do {
                switch try await self.accounts.resolve(.mailbox(mailbox), with: self.resolver) {
                case .mailboxes(let list):
                    targets += list.map(\.mailbox.description).filter { !targets.contains($0) }
                case .unknownUser:
                    results[index] = .failed(SMTPReply(550, EnhancedStatusCode(5, 1, 1), "user unknown"))
                case .foreignDomain:
                    results[index] = .failed(SMTPReply(550, EnhancedStatusCode(5, 1, 2), "not a local domain"))
                }
            } catch {
                results[index] = .deferred(SMTPReply(451, EnhancedStatusCode(4, 3, 0), "account lookup failed"))
            }
        }
        var delivered = DeliveryResult.delivered(SMTPReply(250, EnhancedStatusCode(2, 0, 0), "delivered to a mailbox"))
        if !targets.isEmpty {
            do {
                let content = try await self.queue.content(of: parcel.id)
                defer { content.close() }
                try await self.mailboxes.deliver(content, id: parcel.id, to: targets)
            } catch let error as StoreError {
                delivered = .deferred(error.smtpReply)
            } catch {
                delivered = .deferred(SMTPReply(451, EnhancedStatusCode(4, 3, 0), "cannot read the queued message"))
            }
        }
        return CourierReport(via: "local", results: results.map { $0 ?? delivered })
    }
}
