import Accounts
import Delivery
import Logging
import MailAuth
import MailCore
import MailIntake
import MailStore
import NIOConcurrencyHelpers
import PetrelOperator
import SMTPCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The queue's local courier: recipients in our domains are resolved like at RCPT TO (aliases
/// expanded) and the message is written into their Maildirs.
struct MaildirDelivery: LocalDelivery {
    let accounts: AccountStore
    let resolver: RecipientResolver
    let store: MessageStore

    func deliver(id: String, to recipients: [String]) async -> [ClientSession.RecipientResult] {
        var results: [ClientSession.RecipientResult?] = Array(repeating: nil, count: recipients.count)
        var mailboxes: [String] = []
        for (index, address) in recipients.enumerated() {
            guard let mailbox = Mailbox(address) else {
                results[index] = .failed(SMTPReply(550, EnhancedStatusCode(5, 1, 3), "bad address syntax"))
                continue
            }
            do {
                switch try await self.accounts.resolve(.mailbox(mailbox), with: self.resolver) {
                case .mailboxes(let list):
                    mailboxes += list.map(\.mailbox.description).filter { !mailboxes.contains($0) }
                case .unknownUser:
                    results[index] = .failed(SMTPReply(550, EnhancedStatusCode(5, 1, 1), "user unknown"))
                case .foreignDomain:
                    results[index] = .failed(SMTPReply(550, EnhancedStatusCode(5, 1, 2), "not a local domain"))
                }
            } catch {
                results[index] = .deferred(SMTPReply(451, EnhancedStatusCode(4, 3, 0), "account lookup failed"))
            }
        }
        var delivered = SMTPReply(250, EnhancedStatusCode(2, 0, 0), "delivered to a mailbox")
        if !mailboxes.isEmpty {
            do {
                try await self.store.deliverQueued(id: id, to: mailboxes)
            } catch {
                delivered = MailReceiver.reply(for: error)
            }
        }
        return results.map { $0 ?? ClientSession.result(delivered) }
    }
}

/// The DKIM keys of our domains, read from `DATA_DIR/dkim/` and looked at again after a minute
/// (a key made by `petrel dkim keygen` is used without a restart).
final class SignerCache: Sendable {
    let keys: DKIMKeyStore
    let logger: Logger
    private let cache = NIOLockedValueBox<[String: (loaded: Int64, signers: [DKIMSigner])]>([:])

    init(keys: DKIMKeyStore, logger: Logger) {
        self.keys = keys
        self.logger = logger
    }

    func signers(for domain: String) -> [DKIMSigner] {
        let now = Int64(time(nil))
        if let cached = self.cache.withLockedValue({ $0[domain] }), now - cached.loaded < 60 { return cached.signers }
        var signers: [DKIMSigner] = []
        do {
            signers = try self.keys.signers(for: domain)
        } catch {
            self.logger.error("DKIM key unusable", metadata: ["domain": "\(domain)", "error": "\(error)"])
        }
        if signers.isEmpty {
            self.logger.warning(
                "no DKIM key: mail is sent unsigned",
                metadata: ["domain": "\(domain)", "fix": "petrel dkim keygen \(domain)"]
            )
        }
        self.cache.withLockedValue { $0[domain] = (now, signers) }
        return signers
    }
}
