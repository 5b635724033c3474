import MailCore

/// The IMAP session state machine (RFC 9051 §3): which commands a state admits, what the
/// server announces, what TLS and authentication have made possible. It does no I/O: for each
/// command it answers itself (`respond`) or says what the glue must do (`perform`: authenticate,
/// start TLS, work on the mailboxes), and the glue tells it how that ended.
public struct IMAPSession: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Whether STARTTLS is offered (a certificate is configured and TLS is not implicit).
        public var startTLS: Bool
        /// The connection is TLS from its first octet (port 993).
        public var implicitTLS: Bool
        /// SASL mechanisms, offered only once the connection is private.
        public var mechanisms: [String]
        /// APPENDLIMIT (RFC 7889): the largest message APPEND takes.
        public var appendLimit: UInt64
        /// Consecutive errors (BAD, failed logins) after which the session is closed.
        public var maximumErrors: Int

        public init(
            startTLS: Bool,
            implicitTLS: Bool,
            mechanisms: [String] = ["PLAIN", "SCRAM-SHA-256"],
            appendLimit: UInt64 = 26_214_400,
            maximumErrors: Int = 10
        ) {
            self.startTLS = startTLS
            self.implicitTLS = implicitTLS
            self.mechanisms = mechanisms
            self.appendLimit = appendLimit
            self.maximumErrors = maximumErrors
        }
    }

    public enum State: Hashable, Sendable {
        case notAuthenticated
        case authenticated
        /// A mailbox is selected (`readOnly` after EXAMINE).
        case selected(mailbox: String, readOnly: Bool)
        case logout
    }

    /// What the glue does with a command.
    public enum Step: Hashable, Sendable {
        /// Write these responses (the tagged one last) and read on.
        case respond([IMAPResponse])
        /// Write these responses and close the connection.
        case close([IMAPResponse])
        /// Write `tag OK`, then start TLS; what the client sent after STARTTLS is dropped.
        case startTLS(tag: String)
        /// Write `tag OK`, then compress both ways (RFC 4978); what the client sent after
        /// COMPRESS in plaintext is dropped.
        case compress(tag: String)
        /// Run a SASL exchange (or LOGIN's check), then call `authenticated` or `loginFailed`.
        case authenticate(tag: String, mechanism: String, initialResponse: [UInt8]?)
        case login(tag: String, username: String, password: String)
        /// A command on the user's mailboxes, for the glue to carry out.
        case mailbox(TaggedCommand)
    }

    public let configuration: Configuration
    public private(set) var state = State.notAuthenticated
    public private(set) var tls: Bool
    public private(set) var user: String?
    /// IMAP4rev2 enabled (RFC 9051 §6.3.1): ESEARCH answers, no `\Recent`, UTF-8 names.
    public private(set) var rev2 = false
    /// UTF8=ACCEPT enabled (RFC 6855): mailbox names and strings in UTF-8.
    public private(set) var utf8Accepted = false
    /// CONDSTORE enabled (RFC 7162 §3.1): MODSEQ in every FETCH response about flags, and
    /// HIGHESTMODSEQ after EXPUNGE. ENABLE turns it on, and so does any command that uses it.
    public private(set) var condStore = false
    /// QRESYNC enabled (RFC 7162 §3.2; CONDSTORE with it): VANISHED instead of EXPUNGE, and
    /// SELECT's QRESYNC parameter.
    public private(set) var qresync = false
    /// What the client said of itself with ID (RFC 2971), for the session's log line.
    public private(set) var clientID: [IMAPIDField]?
    /// Capabilities switched off for this user (`petrel user imap`), upper case.
    public private(set) var disabled: Set<String> = []
    /// COMPRESS=DEFLATE is on (RFC 4978).
    public private(set) var compressed = false
    private var errors = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.tls = configuration.implicitTLS
    }

    /// Whether names and strings go out as UTF-8.
    public var utf8: Bool { self.rev2 || self.utf8Accepted }

    /// The greeting (RFC 9051 §7.1.1), with capabilities so a client needs no CAPABILITY command.
    public var greeting: IMAPResponse {
        .untagged(.ok, .capability(self.capabilities), "Petrel IMAP4rev2 ready")
    }

    /// What the server offers now (RFC 9051 §7.2.2). Before TLS, no authentication at all
    /// (`LOGINDISABLED`, no `AUTH=`): a password is never sent in plaintext.
    public var capabilities: [String] {
        var names = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "ENABLE", "ID", "SASL-IR"]
        switch self.state {
        case .notAuthenticated, .logout:
            if !self.tls {
                if self.configuration.startTLS { names.append("STARTTLS") }
                names.append("LOGINDISABLED")
            } else {
                names += self.configuration.mechanisms.map { "AUTH=" + $0 }
            }
        case .authenticated, .selected:
            names += [
                "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "UNSELECT", "ESEARCH", "LIST-EXTENDED",
                "LIST-STATUS", "STATUS=SIZE", "CHILDREN", "BINARY", "UTF8=ACCEPT", "CONDSTORE", "QRESYNC",
                "QUOTA", "QUOTA=RES-STORAGE", "OBJECTID", "PREVIEW", "COMPRESS=DEFLATE",
                "APPENDLIMIT=\(self.configuration.appendLimit)",
            ]
        }
        return self.disabled.isEmpty ? names : names.filter { self.offers($0) }
    }

    /// The capabilities an operator may switch off for a user (`petrel user imap`): every one
    /// offered after login but IMAP4rev1 and APPENDLIMIT.
    public static var switchable: [String] {
        var session = IMAPSession(configuration: Configuration(startTLS: false, implicitTLS: true))
        session.authenticated(user: "-")
        return session.capabilities.filter { $0 != "IMAP4rev1" && !$0.hasPrefix("APPENDLIMIT=") }
    }

    /// Whether an extension is offered to this user (not switched off). QRESYNC needs
    /// CONDSTORE: switching CONDSTORE off switches both.
    public func offers(_ capability: String) -> Bool {
        let name = capability.uppercased()
        if name == "QRESYNC" && self.disabled.contains("CONDSTORE") { return false }
        return !self.disabled.contains(name)
    }

    /// The next command.
    public mutating func receive(_ tagged: TaggedCommand) -> Step {
        let tag = tagged.tag
        switch tagged.command {
        case .capability:
            return self.ok(tag, [.capability(self.capabilities)], "CAPABILITY done")
        case .noop, .check:
            if case .notAuthenticated = self.state { return self.ok(tag, [], "NOOP done") }
            if tagged.command == .check, !self.isSelected { return self.bad(tag, "CHECK needs a selected mailbox") }
            return self.mailbox(tagged)
        case .logout:
            self.state = .logout
            return .close([.untagged(.bye, nil, "logging out"), .tagged(tag, .ok, nil, "LOGOUT done")])
        case .id(let fields):
            // RFC 2971: the server's own fields; the client's go into the session's log line.
            self.clientID = fields
            return self.ok(tag, [.id([IMAPIDField("name", "Petrel")])], "ID done")
        case .startTLS:
            guard case .notAuthenticated = self.state else { return self.bad(tag, "STARTTLS only before login") }
            guard !self.tls else { return self.bad(tag, "TLS is already active") }
            guard self.configuration.startTLS else { return self.no(tag, .cannot, "STARTTLS is not available") }
            self.errors = 0
            return .startTLS(tag: tag)
        case .authenticate(let mechanism, let initial):
            guard let refusal = self.refuseLogin(tag) else {
                guard self.configuration.mechanisms.contains(mechanism.uppercased()) else {
                    return self.no(
                        tag,
                        .cannot,
                        "unsupported mechanism; use " + self.configuration.mechanisms.joined(separator: " or ")
                    )
                }
                var response: [UInt8]?
                if let initial {
                    guard let decoded = initial == "=" ? [] : Base64.decode(initial) else {
                        return self.bad(tag, "the initial response is not valid base64")
                    }
                    response = decoded
                }
                return .authenticate(tag: tag, mechanism: mechanism.uppercased(), initialResponse: response)
            }
            return refusal
        case .login(let username, let password):
            guard let refusal = self.refuseLogin(tag) else {
                return .login(
                    tag: tag,
                    username: String(decoding: username, as: UTF8.self),
                    password: String(decoding: password, as: UTF8.self)
                )
            }
            return refusal
        case .enable(let names):
            guard self.isAuthenticated else { return self.bad(tag, "log in first") }
            var enabled: [String] = []
            for name in names where self.offers(name) {
                switch name.uppercased() {
                case "IMAP4REV2" where !self.rev2:
                    self.rev2 = true
                    enabled.append("IMAP4rev2")
                case "UTF8=ACCEPT" where !self.utf8Accepted:
                    self.utf8Accepted = true
                    enabled.append("UTF8=ACCEPT")
                case "CONDSTORE" where !self.condStore:
                    self.condStore = true
                    enabled.append("CONDSTORE")
                case "QRESYNC" where !self.qresync && self.offers("CONDSTORE"):
                    self.qresync = true
                    self.condStore = true
                    enabled.append("QRESYNC")
                default:
                    break  // unknown or already on: not listed (RFC 5161 §3.1)
                }
            }
            return self.ok(tag, [.enabled(enabled)], "ENABLE done")
        case .namespace:
            guard self.isAuthenticated else { return self.bad(tag, "log in first") }
            return self.ok(tag, [.namespace(prefix: "", delimiter: ".")], "NAMESPACE done")
        case .select(_, let options), .examine(_, let options):
            guard self.isAuthenticated else { return self.bad(tag, "log in first") }
            // RFC 7162 §3.2.5: QRESYNC's parameter only once QRESYNC is enabled.
            if options.qresync != nil && !self.qresync { return self.bad(tag, "ENABLE QRESYNC first") }
            return self.mailbox(tagged)
        case .create, .delete, .rename, .subscribe, .unsubscribe, .list, .lsub, .status, .append, .idle, .getQuota,
            .getQuotaRoot:
            guard self.isAuthenticated else { return self.bad(tag, "log in first") }
            return self.mailbox(tagged)
        case .compress(let mechanism):
            guard self.isAuthenticated else { return self.bad(tag, "log in first") }
            guard mechanism == "DEFLATE", self.offers("COMPRESS=DEFLATE") else {
                return self.bad(tag, "the compression mechanism offered is DEFLATE")
            }
            guard !self.compressed else { return self.no(tag, .compressionActive, "DEFLATE is on already") }
            self.compressed = true
            self.errors = 0
            return .compress(tag: tag)
        case .setQuota:
            guard self.isAuthenticated else { return self.bad(tag, "log in first") }
            // No QUOTASET: limits are the operator's (`petrel user quota`, `quota.storage`).
            return self.no(tag, .noPerm, "quotas are set by the server's operator")
        case .close, .unselect, .expunge, .uidExpunge, .search, .fetch, .store, .copy, .move:
            guard self.isSelected else {
                return self.bad(tag, self.isAuthenticated ? "select a mailbox first" : "log in first")
            }
            if case .fetch(_, _, _, let modifiers) = tagged.command, modifiers.vanished, !self.qresync {
                return self.bad(tag, "ENABLE QRESYNC first")
            }
            return self.mailbox(tagged)
        }
    }

    /// Turns CONDSTORE on when the command is one that enables it (RFC 7162 §3.1: SELECT or
    /// EXAMINE with CONDSTORE, STATUS HIGHESTMODSEQ, FETCH of MODSEQ or CHANGEDSINCE, STORE with
    /// UNCHANGEDSINCE, SEARCH MODSEQ); says whether it was off before.
    public mutating func enableCondStore(for command: IMAPCommand) -> Bool {
        guard !self.condStore, self.offers("CONDSTORE"), Self.enablesCondStore(command) else { return false }
        self.condStore = true
        return true
    }

    static func enablesCondStore(_ command: IMAPCommand) -> Bool {
        switch command {
        case .select(_, let options), .examine(_, let options): return options.condStore || options.qresync != nil
        case .status(_, let items): return items.contains(.highestModSeq)
        case .fetch(_, let items, _, let modifiers): return modifiers.changedSince != nil || items.contains(.modSeq)
        case .store(_, let store, _): return store.unchangedSince != nil
        case .search(let search, _): return IMAPSearchEvaluator.usesModSeq(search.keys)
        default: return false
        }
    }

    /// A command that could not be parsed: `BAD` with its tag when one was read.
    public mutating func unreadable(tag: String?, _ reason: String) -> Step {
        self.bad(tag ?? "*", reason)
    }

    /// A command over a limit (its line, its size, a literal too large).
    public mutating func tooLong(tag: String?, _ reason: String) -> Step {
        self.errors += 1
        let response = IMAPResponse.tagged(tag ?? "*", .bad, .tooBig, reason)
        return self.errors >= self.configuration.maximumErrors ? self.tooManyErrors([response]) : .respond([response])
    }

    public mutating func tlsStarted() {
        self.tls = true
    }

    /// A login or AUTHENTICATE succeeded; `disabled` are the capabilities switched off for the
    /// user.
    public mutating func authenticated(user: String, disabled: Set<String> = []) {
        self.user = user
        self.disabled = Set(disabled.map { $0.uppercased() })
        self.state = .authenticated
        self.errors = 0
    }

    /// A login failed (bad credentials): counted among the errors in a row.
    public mutating func loginFailed(_ response: IMAPResponse) -> Step {
        self.errors += 1
        return self.errors >= self.configuration.maximumErrors ? self.tooManyErrors([response]) : .respond([response])
    }

    /// SELECT or EXAMINE succeeded (or, with nil, failed or ended with CLOSE/UNSELECT).
    public mutating func selected(_ mailbox: String?, readOnly: Bool = false) {
        guard self.isAuthenticated else { return }
        self.state = mailbox.map { .selected(mailbox: $0, readOnly: readOnly) } ?? .authenticated
    }

    /// A mailbox command ended; `failed` when it was BAD (counted as an error in a row).
    public mutating func finished(failed: Bool) -> Bool {
        if failed { self.errors += 1 } else { self.errors = 0 }
        return self.errors >= self.configuration.maximumErrors
    }

    public var isAuthenticated: Bool {
        switch self.state {
        case .authenticated, .selected: return true
        case .notAuthenticated, .logout: return false
        }
    }

    public var isSelected: Bool {
        if case .selected = self.state { return true }
        return false
    }

    // MARK: -

    /// Why a login cannot even be tried now, or nil when it can.
    private mutating func refuseLogin(_ tag: String) -> Step? {
        guard case .notAuthenticated = self.state else { return self.bad(tag, "already logged in") }
        guard self.tls else {
            self.errors += 1
            return .respond([.tagged(tag, .no, .privacyRequired, "use STARTTLS (or port 993) first")])
        }
        return nil
    }

    private mutating func mailbox(_ command: TaggedCommand) -> Step {
        .mailbox(command)
    }

    private mutating func ok(_ tag: String, _ responses: [IMAPResponse], _ text: String) -> Step {
        self.errors = 0
        return .respond(responses + [.tagged(tag, .ok, nil, text)])
    }

    private mutating func no(_ tag: String, _ code: IMAPResponseCode?, _ text: String) -> Step {
        .respond([.tagged(tag, .no, code, text)])
    }

    private mutating func bad(_ tag: String, _ text: String) -> Step {
        self.errors += 1
        let response = IMAPResponse.tagged(tag, .bad, nil, text)
        return self.errors >= self.configuration.maximumErrors ? self.tooManyErrors([response]) : .respond([response])
    }

    private mutating func tooManyErrors(_ responses: [IMAPResponse]) -> Step {
        self.state = .logout
        return .close(responses + [.untagged(.bye, nil, "too many errors")])
    }
}
