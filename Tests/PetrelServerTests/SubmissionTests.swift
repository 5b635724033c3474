import Accounts
import Crypto
import CryptoExtras
import Foundation
import MailCore
import MailStore
import PetrelConfiguration
import PetrelServer
import PetrelTestSupport
import SMTPServer
import ServerTestSupport
import Testing

/// TLS and authenticated submission against the live server: STARTTLS (RFC 3207), implicit TLS
/// (RFC 8314), AUTH (RFC 4954) and the outbound queue.
@Suite struct SubmissionTests {
    static let password = "correct horse battery staple"

    static func server(
        configure: @Sendable @escaping (inout Configuration) -> Void = { _ in }
    ) async throws -> TestServer {
        let server = try await TestServer.start(domains: ["example.test"]) { configuration in
            configuration.limits.connectionsPerIP = 1000
            configure(&configuration)
        }
        let accounts = server.server.accounts
        try accounts.addMailbox(
            AccountAddress(validating: "alice@example.test"),
            password: PasswordCredentials.make(password: Self.password)
        )
        try accounts.addMailbox(AccountAddress(validating: "bob@example.test"), password: nil)
        try accounts.addAlias(
            AccountAddress(validating: "sales@example.test"),
            targets: [AccountAddress(validating: "alice@example.test")]
        )
        return server
    }

    static func plain(_ user: String, _ password: String) -> String {
        Base64.encode(Array("\0\(user)\0\(password)".utf8))
    }

    /// Logs in with AUTH PLAIN and returns the reply.
    static func login(
        _ client: SMTPTestClient,
        user: String = "alice@example.test",
        password: String = password
    ) async throws
        -> SMTPTestReply?
    {
        try await client.send("AUTH PLAIN \(Self.plain(user, password))")
        return await client.read().reply
    }

    @Test func startTLSOnTheSMTPPort() async throws {
        let server = try await Self.server()
        let client = try await server.connect()
        try await client.expect(220)
        try await client.send("EHLO client.example.net")
        #expect(try await client.expect(250).lines.contains("STARTTLS"))
        try await client.send("AUTH PLAIN \(Self.plain("alice@example.test", Self.password))")
        #expect(try await client.expect(503).text.hasPrefix("5.5.1"), "no AUTH on the smtp listener")
        try await client.send("STARTTLS")
        #expect(try await client.expect(220).text == "2.0.0 Ready to start TLS")
        #expect(await client.startTLS())
        try await client.send("EHLO client.example.net")
        let ehlo = try await client.expect(250)
        #expect(!ehlo.lines.contains("STARTTLS"))
        #expect(!ehlo.lines.contains { $0.hasPrefix("AUTH") })
        try await client.send("STARTTLS")
        #expect(try await client.expect(503).text.hasPrefix("5.5.1"))
        try await client.send("AUTH PLAIN \(Self.plain("alice@example.test", Self.password))")
        try await client.expect(503)
        try await client.send("MAIL FROM:<someone@elsewhere.example>")
        try await client.expect(250)
        try await client.send("RCPT TO:<bob@example.test>")
        try await client.expect(250)
        try await client.send("RCPT TO:<x@elsewhere.example>")
        #expect(try await client.expect(554).text.hasPrefix("5.7.1"), "no relaying without AUTH, TLS or not")
        try await client.send("DATA")
        try await client.expect(354)
        try await client.sendRaw(
            Array("From: <someone@elsewhere.example>\r\nSubject: over TLS\r\n\r\nhi\r\n.\r\n".utf8)
        )
        try await client.expect(250)
        let stored = try #require(server.messages(in: "bob@example.test").first)
        #expect(stored.contains("\t(using TLSv1.3 with cipher TLS_"))
        #expect(stored.contains(" with ESMTPS id "))
        await client.close()
        try await server.stop()
    }

    @Test func authenticationNeedsTLSOnSubmission() async throws {
        let server = try await Self.server()
        let client = try await server.connectAndGreet(.submission)
        try await client.send("AUTH PLAIN \(Self.plain("alice@example.test", Self.password))")
        #expect(try await client.expect(538).text.hasPrefix("5.7.11"))
        try await client.send("MAIL FROM:<alice@example.test>")
        #expect(try await client.expect(530).text.hasPrefix("5.7.0"))
        await client.close()
        try await server.stop()
    }

    /// Implicit TLS on 465: PLAIN, then a message to a remote and a local recipient. The remote
    /// part waits in the queue, the local part is in the Maildir, both before the 250.
    @Test func implicitTLSSubmissionQueuesRemoteMail() async throws {
        let server = try await Self.server { $0.delivery.hold = true }
        let client = try await server.connect(.submissions)
        try await client.expect(220)
        try await client.send("EHLO laptop.example.net")
        let ehlo = try await client.expect(250)
        #expect(ehlo.lines.contains("AUTH PLAIN LOGIN SCRAM-SHA-256"))
        #expect(!ehlo.lines.contains("STARTTLS"))
        try await client.send("MAIL FROM:<alice@example.test>")
        try await client.expect(530)
        let login = try #require(await Self.login(client))
        #expect(login.code == 235 && login.text.hasPrefix("2.7.0"))
        try await client.send("AUTH PLAIN \(Self.plain("alice@example.test", Self.password))")
        try await client.expect(503)
        let accepted = try await client.sendMessage(
            from: "alice@example.test",
            to: ["someone@remote.example", "bob@example.test"],
            content: "Subject: hello remote\r\nX-Test: queued\r\n\r\nbody\r\n"
        )
        let id = try #require(accepted.text.split(separator: " ").last.map(String.init))
        let entries = try server.server.queue.entries()
        #expect(entries.map(\.id) == [id])
        #expect(entries.first?.recipients.map(\.address.description) == ["someone@remote.example"])
        #expect(entries.first?.sender.mailbox?.description == "alice@example.test")
        #expect(entries.first?.authenticatedUser == "alice@example.test")
        let queued = try String(contentsOfFile: server.server.queue.directory + "/\(id).eml", encoding: .utf8)
        #expect(queued.contains("\r\nX-Test: queued\r\n"), "the queue keeps CRLF")
        #expect(queued.contains(" with ESMTPSA id \(id)"))
        #expect(server.messages(in: "bob@example.test").first?.contains("X-Test: queued\n") == true)
        await client.close()
        try await server.stop()
    }

    @Test func loginMechanism() async throws {
        let server = try await Self.server()
        let client = try await server.connectAndGreet(.submissions)
        try await client.send("AUTH LOGIN")
        #expect(try await client.expect(334).text == Base64.encode(Array("Username:".utf8)))
        try await client.send(Base64.encode(Array("Alice@Example.TEST".utf8)))
        #expect(try await client.expect(334).text == Base64.encode(Array("Password:".utf8)))
        try await client.send(Base64.encode(Array(Self.password.utf8)))
        try await client.expect(235)
        try await client.send("MAIL FROM:<sales@example.test>")
        #expect(try await client.expect(250).text.hasPrefix("2.1.0"), "an alias that reaches alice is hers")
        await client.close()
        try await server.stop()
    }

    @Test func scramSHA256() async throws {
        let server = try await Self.server()
        let client = try await server.connectAndGreet(.submissions)
        let clientNonce = "fyko+d2lbbFgONRv9qkxdawL"
        let clientFirstBare = "n=alice@example.test,r=\(clientNonce)"
        try await client.send("AUTH SCRAM-SHA-256 \(Base64.encode(Array("n,,\(clientFirstBare)".utf8)))")
        let firstChallenge = try await client.expect(334).text
        let serverFirst = String(decoding: try #require(Base64.decode(firstChallenge)), as: UTF8.self)
        var attributes: [Character: String] = [:]
        for part in serverFirst.split(separator: ",") { attributes[part.first!] = String(part.dropFirst(2)) }
        let nonce = try #require(attributes["r"])
        #expect(nonce.hasPrefix(clientNonce) && nonce.count > clientNonce.count)
        let saltText = try #require(attributes["s"])
        let salt = try #require(Base64.decode(saltText))
        let iterationsText = try #require(attributes["i"])
        let iterations = try #require(Int(iterationsText))
        let salted = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(Self.password.utf8),
            salt: salt,
            using: .sha256,
            outputByteCount: 32,
            unsafeUncheckedRounds: iterations
        )
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: salted))
        let storedKey = SymmetricKey(data: Array(SHA256.hash(data: clientKey)))
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        let signature = Array(HMAC<SHA256>.authenticationCode(for: authMessage, using: storedKey))
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        try await client.send(Base64.encode(Array("\(withoutProof),p=\(Base64.encode(proof))".utf8)))
        let finalChallenge = try await client.expect(334).text
        let serverFinal = String(decoding: try #require(Base64.decode(finalChallenge)), as: UTF8.self)
        let serverKey = SymmetricKey(
            data: Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: salted))
        )
        let expected = Base64.encode(Array(HMAC<SHA256>.authenticationCode(for: authMessage, using: serverKey)))
        #expect(serverFinal == "v=\(expected)", "the server proves it knows the password too")
        try await client.send("")
        try await client.expect(235)
        await client.close()
        try await server.stop()
    }

    /// The salt and iteration count a SCRAM-SHA-256 server-first message gives for `user`, and
    /// the reply to a wrong proof (the exchange is then over).
    static func scramProbe(port: Int, user: String) async throws -> (salt: String, iterations: String, reply: String) {
        let client = try await SMTPTestClient.connect(port: port, implicitTLS: true)
        try await client.expect(220)
        try await client.send("EHLO prober.example")
        try await client.expect(250)
        let clientFirstBare = "n=\(user),r=probe"
        try await client.send("AUTH SCRAM-SHA-256 \(Base64.encode(Array("n,,\(clientFirstBare)".utf8)))")
        let serverFirst = String(
            decoding: try #require(Base64.decode(try await client.expect(334).text)),
            as: UTF8.self
        )
        var attributes: [Character: String] = [:]
        for part in serverFirst.split(separator: ",") { attributes[part.first!] = String(part.dropFirst(2)) }
        let nonce = try #require(attributes["r"])
        let proof = Base64.encode([UInt8](repeating: 7, count: 32))
        try await client.send(Base64.encode(Array("c=biws,r=\(nonce),p=\(proof)".utf8)))
        let reply = try #require(await client.read().reply)
        await client.close()
        return (try #require(attributes["s"]), try #require(attributes["i"]), "\(reply.code) \(reply.text)")
    }

    /// SCRAM must not tell which accounts exist. Before, a real user's salt was the same for any
    /// spelling of the name (the lookup ignores case) while an unknown user's decoy salt changed
    /// with the spelling, and with every restart: an enumeration oracle.
    @Test func scramDoesNotTellWhichUsersExist() async throws {
        let server = try await Self.server { configuration in
            configuration.loginFailures.failures = 1000  // many probes from one address
        }
        let port = server.submissionsPort
        let real = try await Self.scramProbe(port: port, user: "alice@example.test")
        let unknown = try await Self.scramProbe(port: port, user: "nobody@example.test")
        for spelling in ["Alice@Example.TEST", "ALICE@example.test"] {
            #expect(try await Self.scramProbe(port: port, user: spelling).salt == real.salt, "\(spelling)")
        }
        for spelling in ["Nobody@Example.TEST", "NOBODY@example.test"] {
            #expect(try await Self.scramProbe(port: port, user: spelling).salt == unknown.salt, "\(spelling)")
        }
        #expect(unknown.salt != real.salt)
        #expect(unknown.iterations == real.iterations)
        #expect(unknown.reply == real.reply && real.reply.hasPrefix("535 5.7.8"), "\(unknown.reply) / \(real.reply)")
        try await server.stop()
    }

    /// An unknown user's SCRAM salt survives a restart of `petrel serve` (it comes from a secret
    /// kept in the account store), as a real user's does.
    @Test func scramDecoySaltsSurviveARestart() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/petrel.toml"
        try """
        data_dir = "data"
        [listen]
        submissions = ["127.0.0.1:0"]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        var salts: [String] = []
        for _ in 0..<2 {
            let server = PetrelProcess(arguments: ["serve", "--config", config], directory: directory)
            try server.start()
            salts.append(
                try await Self.scramProbe(port: try await server.listeningPort(.submissions), user: "nobody@localhost")
                    .salt
            )
            server.signal(SIGTERM)
            #expect(await server.exit() == 0)
        }
        #expect(salts[0] == salts[1])
    }

    /// Guesses for one account spread over many clients (a botnet) meet a per-account limit:
    /// past `auth.failures` failures the account's checks take turns, one per growing delay,
    /// and a check that would wait past `auth.account_delay_max` is answered 454 without looking
    /// at the password. Before, each client address had its own five guesses and nothing more.
    /// A client that logged in to the account before skips the turns, so the attack does not
    /// lock the real user out.
    @Test func guessesSpreadOverManyClientsMeetAPerAccountLimit() async throws {
        let server = try await Self.server { configuration in
            configuration.loginFailures.failures = 3
            configuration.loginFailures.accountDelayMax = 2
        }
        func attempt(from source: String, password: String = "wrong") async throws -> (SMTPTestReply, Duration) {
            let client = try await SMTPTestClient.connect(
                port: server.submissionsPort,
                implicitTLS: true,
                source: source
            )
            try await client.expect(220)
            try await client.send("EHLO guesser.example")
            try await client.expect(250)
            let started = ContinuousClock.now
            let reply = try #require(await Self.login(client, password: password))
            let elapsed = ContinuousClock.now - started
            await client.close()
            return (reply, elapsed)
        }
        // The real user's laptop logged in before the attack.
        #expect(try await attempt(from: "127.0.0.30", password: Self.password).0.code == 235)
        // Three failures from three addresses: each answered at once.
        var thirdStarted = ContinuousClock.now
        for host in 11...13 {
            thirdStarted = ContinuousClock.now
            let (reply, _) = try await attempt(from: "127.0.0.\(host)")
            #expect(reply.code == 535)
        }
        // The fourth waits its turn, a second after the third failure (which came after
        // `thirdStarted`), wherever it comes from.
        let (fourth, _) = try await attempt(from: "127.0.0.14")
        let waited = ContinuousClock.now - thirdStarted
        #expect(fourth.code == 535 && waited >= .seconds(1), "\(fourth) after \(waited)")
        // Now the delay is the maximum (2 s): of six at once, the ones whose turn is further off
        // than that are told to come back later.
        let replies = try await withThrowingTaskGroup(of: SMTPTestReply.self) { group in
            for host in 15...20 { group.addTask { try await attempt(from: "127.0.0.\(host)").0 } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.contains { $0.code == 454 && $0.text.hasPrefix("4.7.0") }, "\(replies)")
        #expect(replies.allSatisfy { $0.code == 454 || $0.code == 535 }, "\(replies)")
        // The laptop is not held up by the attack: it skips the turns.
        let (laptop, laptopWaited) = try await attempt(from: "127.0.0.30", password: Self.password)
        #expect(laptop.code == 235 && laptopWaited < .seconds(1).stretched, "\(laptop) after \(laptopWaited)")
        // The real user from elsewhere gets in once its turn comes.
        try await Task.sleep(for: .seconds(2))
        let (real, _) = try await attempt(from: "127.0.0.21", password: Self.password)
        #expect(real.code == 235, "\(real)")
        try await server.stop()
    }

    /// What a user submits may name in From and Sender only addresses the user may send as (as
    /// for MAIL FROM), else 550 5.7.1 at the end of data: before, `alice` could send `From:
    /// ceo@…` to the outside, DKIM-signed for the domain. A missing From, Date or Message-ID
    /// is added (RFC 6409 §8). A sender address granted in the account store widens the rule.
    @Test func theHeaderFromMustBeTheUsersToo() async throws {
        let server = try await Self.server { configuration in
            configuration.limits.errors = 100  // every refusal below in one session
        }
        try server.server.accounts.addMailbox(AccountAddress(validating: "ceo@example.test"), password: nil)
        let client = try await server.connectAndGreet(.submissions)
        #expect(try #require(await Self.login(client)).code == 235)
        func submit(_ header: String) async throws -> SMTPTestReply {
            try await client.startData(from: "alice@example.test", to: ["bob@example.test"])
            try await client.sendRaw(Array((header + "Subject: test\r\n\r\nbody\r\n.\r\n").utf8))
            return try #require(await client.read().reply)
        }
        for (header, expected) in [
            (
                "From: ceo@example.test\r\n",
                "550 5.7.1 From: ceo@example.test is not an address alice@example.test may send as"
            ),
            (
                "From: Alice <alice@example.test>\r\nSender: ceo@example.test\r\n",
                "550 5.7.1 Sender: ceo@example.test is not an address alice@example.test may send as"
            ),
            (
                "From: alice@example.test, eve@elsewhere.example\r\n",
                "550 5.7.1 From: eve@elsewhere.example is not an address alice@example.test may send as"
            ),
            (
                "From: alice@example.test\r\nFrom: ceo@example.test\r\n",
                "550 5.7.1 Message refused: the message has 2 From fields"
            ),
            (
                "From: Alice <alice@example.test\r\n",
                "550 5.7.1 Message refused: the From field \"Alice <alice@example.test\""
            ),
            (
                "Subject: a line that is no field below\r\nX-Junk\r\n",
                "554 5.6.0 Message refused: line 2 of the header section is not a header field"
            ),
            // Read one way by Petrel, another by a mail reader: refused (AddressList.mailboxes).
            (
                "From: <ceo@example.test> <alice@example.test>\r\n",
                "550 5.7.1 Message refused: the From field \"<ceo@example.test> <alice@example.test>\" has no readable"
            ),
            ("From: ceo@example.test <alice@example.test>\r\n", "550 5.7.1 Message refused: the From field"),
            ("From: ceo@example.test:alice@example.test;\r\n", "550 5.7.1 Message refused: the From field"),
            (
                "From: alice@example.test\r\nSender: <ceo@example.test> <alice@example.test>\r\n",
                "550 5.7.1 Message refused: the Sender field"
            ),
        ] {
            let reply = try await submit(header)
            #expect("\(reply.code) \(reply.text)".hasPrefix(expected), "\(header.debugDescription): \(reply)")
        }
        #expect(server.messages(in: "bob@example.test").isEmpty)
        for header in [
            "From: Alice <ALICE@example.test>\r\n", "From: sales@example.test\r\n", "Sender: alice@example.test\r\n",
        ] {
            #expect(try await submit(header).code == 250, "\(header.debugDescription)")
        }
        // Granted: the role address, then the whole domain.
        try server.server.accounts.addSenderAddress(
            SenderAddress(validating: "ceo@example.test"),
            for: AccountAddress(validating: "alice@example.test")
        )
        #expect(try await submit("From: ceo@example.test\r\n").code == 250)
        #expect(try await submit("From: other@example.test\r\n").code == 550)
        try server.server.accounts.addSenderAddress(
            SenderAddress(validating: "@example.test"),
            for: AccountAddress(validating: "alice@example.test")
        )
        #expect(try await submit("From: other@example.test\r\n").code == 250)
        try await client.send("MAIL FROM:<other@example.test>")
        #expect(try await client.expect(250).code == 250, "MAIL FROM follows the same grants")
        try await client.send("RSET")
        try await client.expect(250)
        // No From at all: the submission server completes the message.
        #expect(try await submit("").code == 250)
        let completed = server.messages(in: "bob@example.test").filter { $0.contains("\nFrom: <alice@example.test>\n") }
        #expect(completed.count == 2, "the one without From, and the one with only a Sender")
        #expect(completed.allSatisfy { $0.contains("\nDate: ") && $0.contains("\nMessage-ID: <") })
        await client.close()
        try await server.stop()
    }

    @Test func sendersMustBeTheirOwn() async throws {
        let server = try await Self.server()
        let client = try await server.connectAndGreet(.submissions)
        #expect(try #require(await Self.login(client)).code == 235)
        for (sender, code) in [
            ("bob@example.test", 553), ("<>", 553), ("alice@elsewhere.example", 553), ("alice+lists@example.test", 250),
            ("ALICE@example.test", 250),
        ] {
            try await client.send(sender == "<>" ? "MAIL FROM:<>" : "MAIL FROM:<\(sender)>")
            let reply = try #require(await client.read().reply)
            #expect(reply.code == code, "\(sender): \(reply)")
            if code == 553 { #expect(reply.text.hasPrefix("5.7.1")) }
            if code == 250 {
                try await client.send("RSET")
                try await client.expect(250)
            }
        }
        await client.close()
        try await server.stop()
    }

    @Test func failedLoginsAreMalformedOrWrongAndThenBlocked() async throws {
        let server = try await Self.server { configuration in
            configuration.loginFailures.failures = 5
        }
        let client = try await server.connectAndGreet(.submissions)
        try await client.send("AUTH PLAIN !!!not-base64!!!")
        #expect(try await client.expect(501).text.hasPrefix("5.5.2"))
        try await client.send("AUTH PLAIN")
        try await client.expect(334)
        try await client.send("*")
        #expect(try await client.expect(501).text.hasPrefix("5.7.0"))
        try await client.send("AUTH X-NO-SUCH-MECH")
        #expect(try await client.expect(504).text.hasPrefix("5.5.4"))
        // The cancelled exchange was the first failure (else a client could probe for ever without
        // being counted); four wrong passwords make five, over two connections (one session would
        // hit its error limit).
        for attempt in 1...3 {
            #expect(try #require(await Self.login(client, password: "wrong \(attempt)")).code == 535)
        }
        await client.close()
        let second = try await server.connectAndGreet(.submissions)
        let fourth = try #require(await Self.login(second, password: "wrong 4"))
        #expect(fourth.code == 535 && fourth.text.hasPrefix("5.7.8"))
        // The sixth attempt from this address: 421 and close, even with the right password.
        let blocked = try #require(await Self.login(second))
        #expect(blocked.code == 421 && blocked.text.hasPrefix("4.7.0"))
        #expect(await second.read().description == "closed")
        let third = try await server.connect(.submissions)
        #expect(try await third.expect(421).text.hasPrefix("4.7.0"), "refused at the greeting while blocked")
        let inbound = try await server.connect(.smtp)
        try await inbound.expect(220)
        await inbound.close()
        await second.close()
        await third.close()
        try await server.stop()
    }

    /// SIGHUP (here: reloadTLS, which SIGHUP calls) swaps the certificate for new connections;
    /// a session already in TLS goes on.
    @Test func certificateReloadKeepsConnections() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = Configuration.TLSFiles(certificate: directory + "/cert.pem", key: directory + "/key.pem")
        try Self.writeCertificate(to: files, commonName: "first.example.test")
        let server = try await Self.server { configuration in configuration.tls = files }
        let before = try await server.connect(.submissions)
        try await before.expect(220)
        let first = try #require(await before.peerCertificate())
        try Self.writeCertificate(to: files, commonName: "second.example.test")
        server.server.reloadTLS()
        let after = try await server.connect(.submissions)
        try await after.expect(220)
        let second = try #require(await after.peerCertificate())
        #expect(first != second)
        try await before.send("NOOP")
        try await before.expect(250)
        await before.close()
        await after.close()
        try await server.stop()
    }

    static func writeCertificate(to files: Configuration.TLSFiles, commonName: String) throws {
        try SelfSignedCertificate(hostname: commonName).write(to: files)
    }
}
