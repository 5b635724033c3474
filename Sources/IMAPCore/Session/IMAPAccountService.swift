import NIOCore

/// Facts about one IMAP connection, for the account service and the logs.
public struct IMAPClient: Sendable {
    /// A short id for log lines, unique within this process.
    public var id: String
    public var remoteAddress: SocketAddress?
    public var remoteIP: String { self.remoteAddress?.ipAddress ?? "unknown" }

    public init(id: String, remoteAddress: SocketAddress?) {
        self.id = id
        self.remoteAddress = remoteAddress
    }
}

/// One step of a SASL exchange, in IMAP's terms.
public enum IMAPAuthenticationStep: Hashable, Sendable {
    /// Send this challenge (`+ base64`) and read the client's response.
    case challenge([UInt8])
    case succeeded(user: String)
    /// `NO` with this code and text; `close` when the client is to be disconnected (blocked
    /// for too many failures).
    case failed(IMAPResponseCode?, String, close: Bool)
}

public protocol IMAPAuthenticationExchange: AnyObject, Sendable {
    func start(initialResponse: [UInt8]?) async -> IMAPAuthenticationStep
    func receive(_ response: [UInt8]) async -> IMAPAuthenticationStep
    /// The client gave up (`*`, RFC 9051 §6.2.2).
    func cancel() async -> IMAPAuthenticationStep
}

/// What the IMAP server needs from the accounts: logins, checked with the same failure limits
/// as submission. The seam lives in the core, as SMTP's `SMTPMailReceiver` does: the glue
/// (IMAPServer) uses it, the inbound pipeline (MailIntake's `IMAPLogins`) implements it, and
/// neither depends on the other.
public protocol IMAPAccountService: Sendable {
    /// Nil admits the connection; a text turns it away with `* BYE` (a client blocked for
    /// failed logins).
    func admit(_ client: IMAPClient) async -> String?
    func beginAuthentication(mechanism: String, client: IMAPClient) -> any IMAPAuthenticationExchange
    /// A user's own settings: read at login, and again whenever a quota is asked or tested.
    func settings(user: String) async -> IMAPUserSettings
}

/// What an account says about its IMAP sessions.
public struct IMAPUserSettings: Hashable, Sendable {
    /// The storage quota in octets (QUOTA, RFC 9208), nil for none.
    public var storageLimit: UInt64?
    /// Capabilities not offered to this user (upper case): switches for a client that
    /// misbehaves with one.
    public var disabledCapabilities: Set<String>

    public init(storageLimit: UInt64? = nil, disabledCapabilities: Set<String> = []) {
        self.storageLimit = storageLimit
        self.disabledCapabilities = disabledCapabilities
    }
}
