import MailCore
import NIOCore

/// What a listener is for.
public enum ListenerKind: String, Sendable, Hashable {
    /// Port 25: mail for our domains from anyone, STARTTLS offered, no AUTH, no relaying.
    case smtp
    /// Port 587 (RFC 6409): STARTTLS, then AUTH required before MAIL.
    case submission
    /// Port 465 (RFC 8314): TLS from the first octet, then AUTH required before MAIL.
    case submissions
}

/// Facts about one connection that the mail receiver needs (trace headers, logs, policy).
public struct ConnectionInfo: Sendable {
    /// A short id for log lines, unique within this process.
    public var id: String
    public var remoteAddress: SocketAddress?
    public var localAddress: SocketAddress?
    /// The listener the connection came in on.
    public var listener: ListenerKind

    public init(id: String, remoteAddress: SocketAddress?, localAddress: SocketAddress?, listener: ListenerKind = .smtp)
    {
        self.id = id
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.listener = listener
    }

    /// The client's IP address as text, or "unknown".
    public var remoteIP: String { self.remoteAddress?.ipAddress ?? "unknown" }

    /// The client's address as an RFC 5321 address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
    public var remoteAddressLiteral: String {
        guard let address = self.remoteAddress, let ip = address.ipAddress else { return "[unknown]" }
        if case .v6 = address { return "[IPv6:\(ip)]" }
        return "[\(ip)]"
    }
}

/// The seam between the SMTP dialogue and the rest of the server: who may connect, who may
/// authenticate and send, who may receive mail, and where its content goes. `SessionDriver` calls
/// it; MailIntake implements it with the account directory, the Maildir store and the queue;
/// tests swap in fakes.
public protocol SMTPMailReceiver: Sendable {
    /// Decides whether to talk to a new connection at all: nil to greet it, or the 421 to send
    /// instead (a client address blocked after failed logins).
    func admit(connection: ConnectionInfo) async -> SMTPReply?

    /// Decides whether an authenticated user may use this MAIL FROM (RFC 6409 §6.1).
    func verifySender(
        _ path: ReversePath,
        user: String,
        connection: ConnectionInfo
    ) async
        -> ServerSession.SenderVerdict

    /// Starts a SASL exchange for one AUTH command.
    func beginAuthentication(mechanism: String, connection: ConnectionInfo) -> any AuthenticationExchange

    /// Decides on one RCPT TO, at once (RFC 5321 §3.3: accept or refuse each recipient).
    func verifyRecipient(
        _ path: ForwardPath,
        transaction: ServerSession.Transaction,
        connection: ConnectionInfo
    ) async -> ServerSession.RecipientVerdict

    /// Prepares storage for a message; a failure carries the reply to give (4xx for local trouble).
    func openMessage(
        _ transaction: ServerSession.Transaction,
        connection: ConnectionInfo
    ) async -> Result<any IncomingMessage, SMTPCommandError>
}

/// A message being received: content streams in, then it is committed (made durable and
/// delivered, before the 250) or discarded.
public protocol IncomingMessage: AnyObject, Sendable {
    /// Adds content. A storage failure is remembered and reported by `commit`.
    func append(_ content: ByteBuffer) async
    func commit() async -> ServerSession.CommitOutcome
    func discard() async
}

/// One SASL exchange (RFC 4954): started with the AUTH command's initial response, then fed each
/// response the client sends to a 334 challenge.
public protocol AuthenticationExchange: AnyObject, Sendable {
    func start(initialResponse: [UInt8]?) async -> ServerSession.AuthenticationStep
    func receive(_ response: [UInt8]) async -> ServerSession.AuthenticationStep
    /// The client cancelled with "*"; the step to answer with (a failure).
    func cancel() async -> ServerSession.AuthenticationStep
}

extension AuthenticationExchange {
    public func cancel() async -> ServerSession.AuthenticationStep { .failed(.authenticationCancelled) }
}

extension SMTPMailReceiver {
    public func admit(connection: ConnectionInfo) async -> SMTPReply? { nil }

    public func verifySender(
        _ path: ReversePath,
        user: String,
        connection: ConnectionInfo
    ) async
        -> ServerSession.SenderVerdict
    {
        .rejected(.senderNotOwned(path.description))
    }

    public func beginAuthentication(mechanism: String, connection: ConnectionInfo) -> any AuthenticationExchange {
        RefusingAuthenticationExchange()
    }
}

/// For receivers without accounts: every attempt fails.
final class RefusingAuthenticationExchange: AuthenticationExchange {
    func start(initialResponse: [UInt8]?) async -> ServerSession.AuthenticationStep { .failed(.authenticationFailed) }
    func receive(_ response: [UInt8]) async -> ServerSession.AuthenticationStep { .failed(.authenticationFailed) }
}
