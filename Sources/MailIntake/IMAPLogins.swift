import Accounts
import IMAPCore
import SMTPCore

/// IMAP's logins, checked exactly as submission's are: the same SASL machine against the same
/// accounts, the same per-client and per-account failure limits (`LoginFailures`, shared, so a
/// guesser cannot split its guesses between IMAP and SMTP), the same password threads.
public final class IMAPLogins: IMAPAccountService {
    private let receiver: MailReceiver

    public init(receiver: MailReceiver) {
        self.receiver = receiver
    }

    public func admit(_ client: IMAPClient) async -> String? {
        guard self.receiver.failures.isBlocked(client.remoteIP) else { return nil }
        return "too many failed logins from your address; try again later"
    }

    /// The mailbox's quota (its own, or `quota.storage`) and its switched-off capabilities. A
    /// lookup that fails gives the defaults: a login is not refused for it, and the quota is
    /// then the configuration's.
    public func settings(user: String) async -> IMAPUserSettings {
        guard let address = try? AccountAddress(validating: user) else { return IMAPUserSettings() }
        let own = try? await self.receiver.accounts.settings(for: address)
        return IMAPUserSettings(
            storageLimit: self.receiver.quota.limit(own: own?.storageQuota),
            disabledCapabilities: Set(own?.disabledIMAPCapabilities ?? [])
        )
    }

    public func beginAuthentication(mechanism: String, client: IMAPClient) -> any IMAPAuthenticationExchange {
        // Logins on IMAP follow submission's rules; the listener kind matters only to SMTP's own
        // admission, which IMAP does not use (`admit` above).
        let connection = ConnectionInfo(
            id: client.id,
            remoteAddress: client.remoteAddress,
            localAddress: nil,
            listener: .submissions
        )
        return Exchange(self.receiver.beginAuthentication(mechanism: mechanism, connection: connection))
    }

    /// SMTP's replies, in IMAP's words (RFC 5530's response codes).
    final class Exchange: IMAPAuthenticationExchange {
        private let exchange: any AuthenticationExchange

        init(_ exchange: any AuthenticationExchange) {
            self.exchange = exchange
        }

        func start(initialResponse: [UInt8]?) async -> IMAPAuthenticationStep {
            Self.step(await self.exchange.start(initialResponse: initialResponse))
        }

        func receive(_ response: [UInt8]) async -> IMAPAuthenticationStep {
            Self.step(await self.exchange.receive(response))
        }

        func cancel() async -> IMAPAuthenticationStep {
            Self.step(await self.exchange.cancel())
        }

        static func step(_ step: ServerSession.AuthenticationStep) -> IMAPAuthenticationStep {
            switch step {
            case .challenge(let data): return .challenge(data)
            case .succeeded(let user): return .succeeded(user: user)
            case .failed(let reply):
                switch reply.code {
                case 421: return .failed(.unavailable, "too many failed logins; try again later", close: true)
                case 454: return .failed(.unavailable, "cannot check the password now; try again later", close: false)
                case 535: return .failed(.authenticationFailed, "invalid credentials", close: false)
                default:
                    if reply == .authenticationCancelled {
                        return .failed(nil, "authentication cancelled", close: false)
                    }
                    return .failed(nil, reply.lines.joined(separator: " "), close: false)
                }
            }
        }
    }
}
