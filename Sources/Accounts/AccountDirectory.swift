import MailCore

/// What the server asks of its accounts while it runs: the seam an account engine implements.
/// `AccountStore` (SQLite in the data directory) is the embedded engine; a PostgreSQL engine
/// will be another. The intake, the local courier and SASL reach the accounts only through
/// this; the operator's tools (`petrel user`, `petrel alias`) manage the embedded store itself.
public protocol AccountDirectory: Sendable {
    /// Resolves a recipient (aliases expanded, subaddresses folded) in one consistent read.
    func resolve(_ path: ForwardPath, with resolver: RecipientResolver) async throws -> Resolution
    /// Whether `user` may send as `address` (RFC 6409 §6.1).
    func may(
        _ user: AccountAddress,
        sendAs address: AccountAddress,
        with resolver: RecipientResolver
    ) async throws
        -> Bool
    /// The stored password credentials of a mailbox; nil when there is no such mailbox or it
    /// has no password.
    func passwordCredentials(for address: AccountAddress) async throws -> PasswordCredentials?
    /// A mailbox's own settings (quota, IMAP switches); nil when there is no such mailbox.
    func settings(for address: AccountAddress) async throws -> MailboxSettings?
    /// A random secret of `length` octets, the same ever after and for every process that
    /// shares the directory.
    func secret(named name: String, length: Int) throws -> [UInt8]
}

extension AccountStore: AccountDirectory {}
