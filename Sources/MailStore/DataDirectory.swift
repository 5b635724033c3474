/// Where everything lives under the data directory (`data_dir`): the one place that knows the
/// layout, which docs/storage.md describes for operators.
public struct DataDirectory: Hashable, Sendable {
    public let path: String

    public init(_ path: String) {
        self.path = path
    }

    /// One Maildir per mailbox address: `mail/<address>/{tmp,new,cur}`.
    public var mail: String { self.path + "/mail" }
    /// Messages being received; everything here after a crash was never acknowledged.
    public var incoming: String { self.path + "/incoming" }
    /// The outbound queue: `<id>.eml` and its `<id>.envelope`.
    public var queue: String { self.path + "/queue" }
    /// Where `petrel sendmail` leaves messages for the running server to queue.
    public var pickup: String { self.path + "/pickup" }
    /// DKIM private keys, `<domain>/<selector>.pem`.
    public var dkim: String { self.path + "/dkim" }
    /// The self-signed certificate made when no `[tls]` is configured.
    public var tls: String { self.path + "/tls" }
    public var selfSignedCertificate: String { self.tls + "/self-signed-certificate.pem" }
    public var selfSignedKey: String { self.tls + "/self-signed-key.pem" }
    /// Mailboxes, aliases, passwords and server secrets (SQLite).
    public var accounts: String { self.path + "/accounts.sqlite" }
    /// Held by the running server (and by tools that must not run beside it).
    public var lock: String { self.path + "/petrel.lock" }
}
