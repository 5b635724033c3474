import MailCore

/// The client side of one SMTP transaction (RFC 5321), as a state machine: the caller feeds it
/// the server's replies and performs the actions it returns (send these lines, start TLS, send
/// the message, close). No I/O, no clocks: `timeout` says how long the current wait may last,
/// and the caller enforces it.
public struct ClientSession: Sendable {
    /// What is being delivered.
    public struct Envelope: Hashable, Sendable {
        public var sender: ReversePath
        public var recipients: [Mailbox]
        /// Octets of the message, for SIZE (RFC 1870).
        public var size: Int
        /// The message has 8-bit content (BODY=8BITMIME, RFC 6152).
        public var eightBit: Bool
        /// An address or header needs SMTPUTF8 (RFC 6531).
        public var smtpUTF8: Bool

        public init(
            sender: ReversePath,
            recipients: [Mailbox],
            size: Int,
            eightBit: Bool = false,
            smtpUTF8: Bool = false
        ) {
            self.sender = sender
            self.recipients = recipients
            self.size = size
            self.eightBit = eightBit
            self.smtpUTF8 = smtpUTF8
        }
    }

    public enum TLSPolicy: Hashable, Sendable {
        /// STARTTLS when offered; plaintext otherwise (RFC 7435, opportunistic).
        case opportunistic
        /// No delivery without TLS (a smarthost, MTA-STS, DANE).
        case required
        /// Never (the connection is already TLS, or a test).
        case never
    }

    public enum Action: Hashable, Sendable {
        /// Write these command lines (each without CRLF), in one write: several when pipelining.
        case send([String])
        /// Nothing to write: read the next reply (pipelined replies come one by one).
        case awaitReply
        /// Send STARTTLS. Its reply must be the last thing the server sends in plaintext: arm
        /// the check for anything behind it before sending (RFC 3207 §4.2; the mirror image of
        /// CVE-2011-0411).
        case requestTLS
        /// The server said 220 to STARTTLS: do the handshake, then call `tlsEstablished()`.
        case startTLS
        /// Send the message through `MessageDataEncoder` (which ends it with "."), then wait.
        case sendMessage
        /// The session is over: close the connection. `outcome` has every recipient's result.
        case close
    }

    /// Each recipient's result.
    public enum RecipientResult: Hashable, Sendable {
        case delivered(SMTPReply)
        /// 4xx, a lost connection, a timeout: try again later.
        case deferred(SMTPReply)
        /// 5xx, or something we cannot send to this server: bounce.
        case failed(SMTPReply)
    }

    public struct Outcome: Hashable, Sendable {
        /// In the order of the envelope; nil until known.
        public var recipients: [RecipientResult?]
        /// TLS was in use for the transaction.
        public var tls = false
        /// The extensions the server announced (upper-case keywords, with parameters).
        public var extensions: [String: String] = [:]
        /// The server answered a RCPT: it took a position on the recipients, so another MX host
        /// would not be asked the same question (RFC 5321 §5.1 moves on only before that).
        public var recipientsAnswered = false
    }

    /// A smarthost's login (AUTH PLAIN, RFC 4616), sent only over TLS.
    public struct Credentials: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
        public var username: String
        public var password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }

        /// The user name only: a password must not reach a log by accident.
        public var description: String { self.username }
        public var debugDescription: String { self.username }
    }

    enum State: Hashable, Sendable {
        case greeting
        case ehlo
        case helo
        case startTLS
        case tlsHandshake
        case auth
        /// Waiting for the replies to MAIL, each RCPT, and (pipelined) DATA, in this order.
        case transaction(awaiting: [Step])
        case dataStarted
        case messageSent
        case emptyDataSent
        case quit
        case closed
    }

    enum Step: Hashable, Sendable {
        case mail
        case rcpt(Int)
        case data
    }

    public let envelope: Envelope
    public let heloName: String
    public let tlsPolicy: TLSPolicy
    public let credentials: Credentials?
    private(set) var state = State.greeting
    public private(set) var outcome: Outcome
    private var pipelining = false
    private var mailFailed: SMTPReply?

    /// - Parameters:
    ///   - tlsActive: the connection is TLS from the start (port 465).
    ///   - credentials: log in before the transaction; refused without TLS.
    public init(
        envelope: Envelope,
        heloName: String,
        tlsPolicy: TLSPolicy = .opportunistic,
        tlsActive: Bool = false,
        credentials: Credentials? = nil
    ) {
        self.envelope = envelope
        self.heloName = heloName
        self.tlsPolicy = tlsPolicy
        self.credentials = credentials
        self.outcome = Outcome(recipients: Array(repeating: nil, count: envelope.recipients.count), tls: tlsActive)
    }

    /// How long to wait for the reply now expected (RFC 5321 §4.5.3.2).
    public var timeout: Duration {
        switch self.state {
        case .greeting, .ehlo, .helo, .startTLS, .tlsHandshake, .auth, .quit, .closed: return .seconds(300)
        case .transaction(let awaiting): return awaiting.first == .data ? .seconds(120) : .seconds(300)
        case .dataStarted: return .seconds(180)  // per data block sent
        case .messageSent, .emptyDataSent: return .seconds(600)
        }
    }

    public mutating func receive(_ reply: SMTPReply) -> Action {
        // RFC 5321 §3.8: 421 at any point means the server is closing the channel.
        if reply.code == 421, self.state != .quit, self.state != .closed { return self.abandon(reply) }
        switch self.state {
        case .greeting:
            guard reply.code == 220 else { return self.abandon(reply) }
            self.state = .ehlo
            return .send(["EHLO \(self.heloName)"])
        case .ehlo:
            if reply.code == 250 {
                self.outcome.extensions = Self.extensions(reply)
                return self.afterHello()
            }
            // RFC 5321 §3.2: a server that does not know EHLO gets HELO.
            if reply.isPermanentFailure, [500, 501, 502, 504, 550].contains(reply.code) {
                self.state = .helo
                return .send(["HELO \(self.heloName)"])
            }
            return self.abandon(reply)
        case .helo:
            guard reply.code == 250 else { return self.abandon(reply) }
            self.outcome.extensions = [:]
            return self.afterHello()
        case .startTLS:
            if reply.code == 220 {
                self.state = .tlsHandshake
                return .startTLS
            }
            if self.tlsPolicy == .required {
                return self.abandon(Self.tlsUnavailable(reply.lines.joined(separator: " ")))
            }
            return self.startTransaction()  // opportunistic: go on without TLS
        case .tlsHandshake:
            return self.abandon(Self.protocolError("a reply during the TLS handshake"))
        case .auth:
            guard reply.code == 235 else {
                // Our login is wrong or refused: an operator's problem, so retry, never bounce.
                let text = reply.lines.joined(separator: " ")
                return self.abandon(
                    SMTPReply(451, EnhancedStatusCode(4, 7, 8), "the relay refused our login: \(reply.code) \(text)")
                )
            }
            return self.startTransaction()
        case .transaction(var awaiting):
            guard let step = awaiting.first else { return self.abandon(Self.protocolError("an unexpected reply")) }
            awaiting.removeFirst()
            self.state = .transaction(awaiting: awaiting)
            switch step {
            case .mail:
                if reply.code != 250 { self.mailFailed = reply }
                if !self.pipelining {
                    guard reply.code == 250 else { return self.finishRecipients(with: reply) }
                    return .send([self.rcptCommand(0)])
                }
                return .awaitReply  // pipelined: the next reply is already on its way
            case .rcpt(let index):
                self.outcome.recipientsAnswered = true
                let result: RecipientResult
                if let mailFailed {
                    result = Self.result(mailFailed)
                } else if reply.code == 250 || reply.code == 251 {
                    result = .delivered(reply)  // accepted so far; the data reply decides
                } else {
                    result = Self.result(reply)
                }
                self.outcome.recipients[index] = result
                if !self.pipelining {
                    if index + 1 < self.envelope.recipients.count { return .send([self.rcptCommand(index + 1)]) }
                    guard self.acceptedCount > 0 else { return self.quit() }
                    self.state = .transaction(awaiting: [.data])
                    return .send(["DATA"])
                }
                return .awaitReply  // pipelined: the next reply is already on its way
            case .data:
                if reply.code == 354 {
                    if self.acceptedCount == 0 {
                        // RFC 2920 §3.1: no recipient, yet the server waits for data: end it empty.
                        self.state = .emptyDataSent
                        return .send(["."])
                    }
                    self.state = .dataStarted
                    return .sendMessage
                }
                if self.acceptedCount > 0 { self.settleAccepted(with: reply) }
                return self.quit()
            }
        case .dataStarted:
            return self.abandon(Self.protocolError("a reply before the end of the message"))
        case .messageSent:
            self.settleAccepted(with: reply)
            return self.quit()
        case .emptyDataSent:
            return self.quit()
        case .quit:
            self.state = .closed
            return .close
        case .closed:
            return .close
        }
    }

    /// The message and its final "." are written; the reply to them is next.
    public mutating func messageSent() {
        if self.state == .dataStarted { self.state = .messageSent }
    }

    /// The TLS handshake succeeded: greet again (RFC 3207 §4.2: everything learnt before is void).
    public mutating func tlsEstablished() -> Action {
        self.outcome.tls = true
        self.outcome.extensions = [:]
        self.state = .ehlo
        return .send(["EHLO \(self.heloName)"])
    }

    /// The connection broke, timed out or the TLS handshake failed: whoever has no result yet
    /// gets a temporary failure, so the message is tried again.
    /// - Parameter server: how the server is named in the reply recorded (`host [address]`).
    public mutating func connectionLost(_ failure: Failure, server: String) {
        let reply = SMTPReply(451, failure.enhancedCode, "\(server): \(failure)")
        for index in self.outcome.recipients.indices {
            switch self.outcome.recipients[index] {
            case nil:
                self.outcome.recipients[index] = .deferred(reply)
            case .delivered:
                // Accepted at RCPT but the data was not acknowledged: not delivered.
                if self.state != .quit, self.state != .closed { self.outcome.recipients[index] = .deferred(reply) }
            case .deferred, .failed:
                break
            }
        }
        self.state = .closed
    }

    // MARK: - Steps

    private mutating func afterHello() -> Action {
        if !self.outcome.tls, self.tlsPolicy != .never {
            if self.outcome.extensions["STARTTLS"] != nil {
                self.state = .startTLS
                return .requestTLS
            }
            if self.tlsPolicy == .required { return self.abandon(Self.tlsUnavailable("STARTTLS not offered")) }
        }
        if let credentials = self.credentials {
            guard self.outcome.tls else { return self.abandon(Self.tlsUnavailable("no login without TLS")) }
            guard self.outcome.extensions["AUTH"]?.uppercased().split(separator: " ").contains("PLAIN") == true else {
                return self.abandon(
                    SMTPReply(451, EnhancedStatusCode(4, 7, 8), "the relay does not offer AUTH PLAIN")
                )
            }
            self.state = .auth
            let message = Array("\0\(credentials.username)\0\(credentials.password)".utf8)
            return .send(["AUTH PLAIN " + Base64.encode(message)])
        }
        return self.startTransaction()
    }

    private mutating func startTransaction() -> Action {
        let extensions = self.outcome.extensions
        if let limit = extensions["SIZE"].flatMap({ Int($0) }), limit > 0, self.envelope.size > limit {
            return self.refuseAll(
                SMTPReply(
                    552,
                    EnhancedStatusCode(5, 3, 4),
                    "message of \(self.envelope.size) octets over the server's SIZE \(limit)"
                )
            )
        }
        if self.envelope.smtpUTF8, extensions["SMTPUTF8"] == nil {
            return self.refuseAll(
                SMTPReply(
                    550,
                    EnhancedStatusCode(5, 6, 7),
                    "the server does not support SMTPUTF8, which the message needs"
                )
            )
        }
        if self.envelope.eightBit, extensions["8BITMIME"] == nil {
            return self.refuseAll(
                SMTPReply(550, EnhancedStatusCode(5, 6, 3), "the server does not accept 8-bit content (no 8BITMIME)")
            )
        }
        var mail = "MAIL FROM:\(self.envelope.sender)"
        if extensions["SIZE"] != nil { mail += " SIZE=\(self.envelope.size)" }
        if self.envelope.eightBit { mail += " BODY=8BITMIME" }
        if self.envelope.smtpUTF8 { mail += " SMTPUTF8" }
        self.pipelining = extensions["PIPELINING"] != nil
        if self.pipelining {
            // RFC 2920: MAIL, every RCPT and DATA in one go; the replies come back in order.
            let count = self.envelope.recipients.count
            self.state = .transaction(awaiting: [.mail] + (0..<count).map { .rcpt($0) } + [.data])
            return .send([mail] + (0..<count).map(self.rcptCommand) + ["DATA"])
        }
        self.state = .transaction(awaiting: [.mail] + (0..<self.envelope.recipients.count).map { .rcpt($0) })
        return .send([mail])
    }

    private func rcptCommand(_ index: Int) -> String {
        "RCPT TO:<\(self.envelope.recipients[index])>"
    }

    private var acceptedCount: Int {
        self.outcome.recipients.filter { if case .delivered = $0 { return true } else { return false } }.count
    }

    /// The reply to the data (or a failed DATA) settles every recipient accepted at RCPT.
    private mutating func settleAccepted(with reply: SMTPReply) {
        for index in self.outcome.recipients.indices {
            if case .delivered = self.outcome.recipients[index] { self.outcome.recipients[index] = Self.result(reply) }
        }
    }

    /// MAIL failed (not pipelined): every recipient gets its reply.
    private mutating func finishRecipients(with reply: SMTPReply) -> Action {
        for index in self.outcome.recipients.indices where self.outcome.recipients[index] == nil {
            self.outcome.recipients[index] = Self.result(reply)
        }
        return self.quit()
    }

    /// Something we will not send to this server: every recipient fails with `reply`, politely.
    private mutating func refuseAll(_ reply: SMTPReply) -> Action {
        for index in self.outcome.recipients.indices { self.outcome.recipients[index] = Self.result(reply) }
        return self.quit()
    }

    /// The server refused the session (greeting, EHLO, 421...): all undecided recipients get it.
    private mutating func abandon(_ reply: SMTPReply) -> Action {
        for index in self.outcome.recipients.indices {
            switch self.outcome.recipients[index] {
            case nil, .delivered: self.outcome.recipients[index] = Self.result(reply)
            case .deferred, .failed: break
            }
        }
        if reply.code == 421 {  // the server is closing the connection itself
            self.state = .closed
            return .close
        }
        return self.quit()
    }

    private mutating func quit() -> Action {
        self.state = .quit
        return .send(["QUIT"])
    }

    /// 2xx/3xx delivered, 4xx deferred, 5xx failed.
    public static func result(_ reply: SMTPReply) -> RecipientResult {
        if reply.code < 400 { return .delivered(reply) }
        return reply.isTransientFailure ? .deferred(reply) : .failed(reply)
    }

    static func tlsUnavailable(_ why: String) -> SMTPReply {
        SMTPReply(451, EnhancedStatusCode(4, 7, 10), "TLS is required but not available: \(why)")
    }

    static func protocolError(_ what: String) -> SMTPReply {
        SMTPReply(451, EnhancedStatusCode(4, 5, 0), "protocol error: the server sent \(what)")
    }

    /// EHLO keywords (RFC 5321 §4.1.1.1), upper case, with their parameters.
    static func extensions(_ reply: SMTPReply) -> [String: String] {
        var extensions: [String: String] = [:]
        for line in reply.lines.dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let keyword = parts.first else { continue }
            extensions[keyword.uppercased()] = parts.count > 1 ? String(parts[1]) : ""
        }
        return extensions
    }
}
