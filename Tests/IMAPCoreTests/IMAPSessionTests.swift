import Testing

@testable import IMAPCore

/// The session state machine: which command each state admits, what TLS and login change.
@Suite struct IMAPSessionTests {
    static func session(tls: Bool = false, loggedIn: Bool = false, selected: Bool = false) -> IMAPSession {
        var session = IMAPSession(configuration: .init(startTLS: true, implicitTLS: tls))
        if loggedIn { session.authenticated(user: "alice@example.test") }
        if selected { session.selected("INBOX") }
        return session
    }

    static func command(_ text: String) throws -> TaggedCommand {
        try IMAPCommandParser.parse(IMAPCommandText([.text(.init(string: text))])).get()
    }

    /// Command, state, and what the session does: `mailbox`, `authenticate`, `login`, `startTLS`,
    /// `close`, or the first response's status (and code).
    static let table: [(String, String, String)] = [
        ("a CAPABILITY", "plain", "OK"),
        ("a NOOP", "plain", "OK"),
        ("a LOGIN alice pw", "plain", "NO PRIVACYREQUIRED"),
        ("a AUTHENTICATE PLAIN", "plain", "NO PRIVACYREQUIRED"),
        ("a STARTTLS", "plain", "startTLS"),
        ("a STARTTLS", "tls", "BAD"),
        ("a LOGIN alice pw", "tls", "login"),
        ("a AUTHENTICATE PLAIN AGFsaWNlAHB3", "tls", "authenticate"),
        ("a AUTHENTICATE CRAM-MD5", "tls", "NO CANNOT"),
        ("a SELECT INBOX", "tls", "BAD"),
        ("a ENABLE IMAP4rev2", "tls", "BAD"),
        ("a FETCH 1 FLAGS", "tls", "BAD"),
        ("a LOGIN alice pw", "auth", "BAD"),
        ("a STARTTLS", "auth", "BAD"),
        ("a SELECT INBOX", "auth", "mailbox"),
        ("a LIST \"\" *", "auth", "mailbox"),
        ("a APPEND INBOX {0+}\r\n", "auth", "mailbox"),
        ("a NAMESPACE", "auth", "OK"),
        ("a ID NIL", "auth", "OK"),
        ("a NOOP", "auth", "mailbox"),
        ("a CHECK", "auth", "BAD"),
        ("a IDLE", "auth", "mailbox"),
        ("a FETCH 1 FLAGS", "auth", "BAD"),
        ("a EXPUNGE", "auth", "BAD"),
        ("a FETCH 1 FLAGS", "selected", "mailbox"),
        ("a UID STORE 1 +FLAGS (\\Seen)", "selected", "mailbox"),
        ("a CLOSE", "selected", "mailbox"),
        ("a LOGOUT", "plain", "close"),
        ("a LOGOUT", "selected", "close"),
        ("a COMPRESS DEFLATE", "tls", "BAD"),
        ("a COMPRESS DEFLATE", "auth", "compress"),
        ("a COMPRESS deflate", "selected", "compress"),
        ("a COMPRESS LZ4", "auth", "BAD"),
        ("a GETQUOTAROOT INBOX", "auth", "mailbox"),
        ("a GETQUOTA \"\"", "tls", "BAD"),
        ("a SETQUOTA \"\" (STORAGE 1)", "auth", "NO other"),
    ]

    /// COMPRESS twice: `NO [COMPRESSIONACTIVE]` (RFC 4978 §3); switched off for the user: BAD.
    @Test func compressionIsTurnedOnOnce() throws {
        var session = Self.session(tls: true, loggedIn: true)
        #expect(session.capabilities.contains("COMPRESS=DEFLATE"))
        #expect(session.receive(try Self.command("a COMPRESS DEFLATE")) == .compress(tag: "a"))
        #expect(
            session.receive(try Self.command("b COMPRESS DEFLATE"))
                == .respond([.tagged("b", .no, .compressionActive, "DEFLATE is on already")])
        )
        var switched = Self.session(tls: true)
        switched.authenticated(user: "alice", disabled: ["compress=deflate"])
        #expect(!switched.capabilities.contains("COMPRESS=DEFLATE"))
        guard case .respond(let responses) = switched.receive(try Self.command("c COMPRESS DEFLATE")) else {
            Issue.record("a switched-off COMPRESS is refused")
            return
        }
        #expect(responses.last.map { if case .tagged(_, .bad, _, _) = $0 { true } else { false } } == true)
    }

    @Test func eachStateAdmitsItsCommands() throws {
        for (text, state, expected) in Self.table {
            var session =
                switch state {
                case "plain": Self.session()
                case "tls": Self.session(tls: true)
                case "auth": Self.session(tls: true, loggedIn: true)
                default: Self.session(tls: true, loggedIn: true, selected: true)
                }
            let commandText = text.hasSuffix("{0+}\r\n") ? String(text.dropLast(6)) + "{0+}" : text
            let command: TaggedCommand
            if text.contains("{0+}") {
                command = try IMAPCommandParser.parse(
                    IMAPCommandText([
                        .text(.init(string: "a APPEND INBOX ")), .literal(.init(), binary: false), .text(.init()),
                    ])
                ).get()
            } else {
                command = try Self.command(commandText)
            }
            let step = session.receive(command)
            #expect(Self.describe(step) == expected, "\(text) in \(state)")
        }
    }

    static func describe(_ step: IMAPSession.Step) -> String {
        switch step {
        case .mailbox: return "mailbox"
        case .authenticate: return "authenticate"
        case .login: return "login"
        case .startTLS: return "startTLS"
        case .compress: return "compress"
        case .close: return "close"
        case .respond(let responses):
            guard case .tagged(_, let status, let code, _) = responses.last else { return "?" }
            let name: String? =
                switch code {
                case .privacyRequired: "PRIVACYREQUIRED"
                case .cannot: "CANNOT"
                case nil: nil
                default: "other"
                }
            return status.rawValue + (name.map { " " + $0 } ?? "")
        }
    }

    @Test func noAuthenticationIsOfferedBeforeTLS() {
        let plain = Self.session()
        #expect(plain.capabilities.contains("LOGINDISABLED"))
        #expect(plain.capabilities.contains("STARTTLS"))
        #expect(!plain.capabilities.contains { $0.hasPrefix("AUTH=") })
        var tls = Self.session()
        tls.tlsStarted()
        #expect(!tls.capabilities.contains("LOGINDISABLED") && !tls.capabilities.contains("STARTTLS"))
        #expect(tls.capabilities.contains("AUTH=PLAIN") && tls.capabilities.contains("AUTH=SCRAM-SHA-256"))
        let implicit = IMAPSession(configuration: .init(startTLS: false, implicitTLS: true))
        #expect(implicit.capabilities.contains("AUTH=PLAIN"))
    }

    @Test func afterLoginEveryExtensionIsAdvertisedAndOneLiteralVariant() {
        let session = Self.session(tls: true, loggedIn: true)
        for name in [
            "IMAP4rev2", "IMAP4rev1", "LITERAL+", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "UNSELECT",
            "ESEARCH", "SASL-IR", "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "ID", "CHILDREN", "BINARY",
            "UTF8=ACCEPT", "ENABLE", "APPENDLIMIT=26214400",
        ] {
            #expect(session.capabilities.contains(name), "\(name)")
        }
        #expect(!session.capabilities.contains("LITERAL-"), "one of LITERAL+ and LITERAL-, never both")
    }

    @Test func enableListsOnlyWhatItTurnedOn() throws {
        var session = Self.session(tls: true, loggedIn: true)
        #expect(!session.utf8)
        let step = session.receive(try Self.command("a ENABLE IMAP4rev2 X-UNKNOWN"))
        #expect(step == .respond([.enabled(["IMAP4rev2"]), .tagged("a", .ok, nil, "ENABLE done")]))
        #expect(session.rev2 && session.utf8)
        let again = session.receive(try Self.command("b ENABLE imap4rev2 UTF8=ACCEPT"))
        #expect(again == .respond([.enabled(["UTF8=ACCEPT"]), .tagged("b", .ok, nil, "ENABLE done")]))
    }

    /// RFC 7162 §3.2.3: QRESYNC brings CONDSTORE with it; each is listed once, when turned on.
    @Test func enableQResyncTurnsOnCondStoreToo() throws {
        var session = Self.session(tls: true, loggedIn: true)
        let step = session.receive(try Self.command("a ENABLE QRESYNC"))
        #expect(step == .respond([.enabled(["QRESYNC"]), .tagged("a", .ok, nil, "ENABLE done")]))
        #expect(session.qresync && session.condStore)
        let again = session.receive(try Self.command("b ENABLE CONDSTORE QRESYNC"))
        #expect(again == .respond([.enabled([]), .tagged("b", .ok, nil, "ENABLE done")]))
    }

    /// SELECT's QRESYNC parameter before ENABLE QRESYNC is an error (§3.2.5), and so is the
    /// VANISHED modifier of UID FETCH; the commands that use CONDSTORE turn it on.
    @Test func qresyncNeedsEnableAndCondStoreTurnsOnByUse() throws {
        var session = Self.session(tls: true, loggedIn: true)
        guard case .respond(let refused) = session.receive(try Self.command("a SELECT INBOX (QRESYNC (1 2))")) else {
            Issue.record("a SELECT with QRESYNC before ENABLE is answered at once")
            return
        }
        #expect(refused.last == .tagged("a", .bad, nil, "ENABLE QRESYNC first"))
        for (text, enables) in [
            ("b SELECT INBOX", false), ("c SELECT INBOX (CONDSTORE)", true), ("d STATUS INBOX (HIGHESTMODSEQ)", true),
            ("e FETCH 1 (FLAGS)", false), ("f FETCH 1 (MODSEQ)", true), ("g FETCH 1 FLAGS (CHANGEDSINCE 5)", true),
            ("h STORE 1 (UNCHANGEDSINCE 0) +FLAGS (x)", true), ("i SEARCH NOT MODSEQ 3", true),
            ("j SEARCH ALL", false),
        ] {
            var fresh = Self.session(tls: true, loggedIn: true)
            #expect(fresh.enableCondStore(for: try Self.command(text).command) == enables, "\(text)")
            #expect(fresh.condStore == enables)
            #expect(!fresh.enableCondStore(for: try Self.command(text).command), "once only")
        }
    }

    @Test func tenErrorsInARowEndTheSession() throws {
        var session = Self.session(tls: true)
        for number in 1..<10 {
            guard case .respond = session.unreadable(tag: "t\(number)", "garbage") else {
                Issue.record("closed after \(number)")
                return
            }
        }
        guard case .close(let responses) = session.unreadable(tag: "t10", "garbage") else {
            Issue.record("not closed after ten errors")
            return
        }
        #expect(responses.last == .untagged(.bye, nil, "too many errors"))
    }

    @Test func aGoodCommandResetsTheCount() throws {
        var session = Self.session(tls: true)
        for _ in 0..<9 { _ = session.unreadable(tag: "x", "garbage") }
        _ = session.receive(try Self.command("a CAPABILITY"))
        guard case .respond = session.unreadable(tag: "y", "garbage") else {
            Issue.record("the count was not reset")
            return
        }
    }

    @Test func selectingAndClosingMoveBetweenStates() {
        var session = Self.session(tls: true, loggedIn: true)
        session.selected("Work", readOnly: true)
        #expect(session.state == .selected(mailbox: "Work", readOnly: true))
        session.selected(nil)
        #expect(session.state == .authenticated)
        var anonymous = Self.session(tls: true)
        anonymous.selected("INBOX")
        #expect(anonymous.state == .notAuthenticated, "no mailbox without a login")
    }
}
