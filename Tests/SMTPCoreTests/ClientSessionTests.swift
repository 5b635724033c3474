import Foundation
import MailCore
import SMTPCore
import Testing

/// The client side: reading replies, encoding DATA, and the transaction as a state machine,
/// driven by scripted server replies.
struct ClientSessionTests {
    static func reply(_ text: String) -> SMTPReply {
        var parser = SMTPReplyParser()
        let replies = try! parser.feed(Array(text.utf8))
        precondition(replies.count == 1, "one reply in \(text)")
        return replies[0]
    }

    // MARK: Replies

    @Test func repliesAreReadWholeAndInPieces() throws {
        let text =
            "250-mx.remote.test Hello\r\n250-SIZE 1000000\r\n250-PIPELINING\r\n250 STARTTLS\r\n550 5.1.1 <x@y>: no such user\r\n"
        var parser = SMTPReplyParser()
        var replies: [SMTPReply] = []
        for byte in text.utf8 { replies += try parser.feed([byte]) }
        #expect(replies.count == 2 && parser.isIdle)
        #expect(
            replies[0].code == 250
                && replies[0].lines == ["mx.remote.test Hello", "SIZE 1000000", "PIPELINING", "STARTTLS"]
        )
        #expect(replies[0].enhancedCode == nil)
        #expect(replies[1].enhancedCode == EnhancedStatusCode(5, 1, 1) && replies[1].lines == ["<x@y>: no such user"])
        // A bare code, LF-only line ends, and an enhanced code of another class (kept as text).
        #expect(Self.reply("221\n").lines == [""])
        #expect(Self.reply("451 5.0.0 odd\r\n").enhancedCode == nil)
    }

    @Test(arguments: [
        "hello\r\n", "25\r\n", "2500 x\r\n", "250x\r\n", "199 too low\r\n", "600 too high\r\n",
        "250-first\r\n251 second code\r\n",
    ])
    func notReplies(_ text: String) {
        var parser = SMTPReplyParser()
        #expect(throws: SMTPReplyParser.Failure.self) { _ = try parser.feed(Array(text.utf8)) }
    }

    @Test func hostileServersAreBounded() {
        var long = SMTPReplyParser()
        #expect(throws: SMTPReplyParser.Failure.lineTooLong) {
            _ = try long.feed(Array(repeating: UInt8(ascii: "2"), count: 10_000))
        }
        var many = SMTPReplyParser()
        #expect(throws: SMTPReplyParser.Failure.tooManyLines) {
            _ = try many.feed(Array(String(repeating: "250-x\r\n", count: 500).utf8))
        }
    }

    // MARK: DATA

    @Test(arguments: [
        ("Subject: a\r\n\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n.\r\n"),
        (".\r\n..two\r\nend", "..\r\n...two\r\nend\r\n.\r\n"),
        ("bare\nLF\rand CR\r\r\n", "bare\r\nLF\r\nand CR\r\n\r\n.\r\n"),
        ("smuggle\n.\r\nMAIL FROM:<x>\r\n", "smuggle\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"),
        ("", ".\r\n"),
        ("no end", "no end\r\n.\r\n"),
    ])
    func dataIsStuffedAndCRLF(_ input: String, _ expected: String) {
        for size in [1, 2, 100] {
            var encoder = MessageDataEncoder()
            var output: [UInt8] = []
            let bytes = Array(input.utf8)
            var offset = 0
            while offset < bytes.count {
                encoder.encode(bytes[offset..<min(offset + size, bytes.count)], into: &output)
                offset += size
            }
            encoder.finish(into: &output)
            #expect(String(decoding: output, as: UTF8.self) == expected, "pieces of \(size)")
            // Whatever came in, the only line that is "." alone is the last.
            let lines = String(decoding: output, as: UTF8.self).components(separatedBy: "\r\n")
            #expect(lines.dropLast(2).allSatisfy { $0 != "." })
        }
    }

    // MARK: The transaction

    static let envelope = ClientSession.Envelope(
        sender: .mailbox(Mailbox("alice@example.test")!),
        recipients: [Mailbox("bob@remote.test")!, Mailbox("carol@remote.test")!],
        size: 1234
    )

    /// Runs a session against scripted replies; returns what the client sent and its outcome.
    static func run(
        _ replies: [String],
        envelope: ClientSession.Envelope = Self.envelope,
        tls: ClientSession.TLSPolicy = .opportunistic,
        credentials: ClientSession.Credentials? = nil
    ) -> (sent: [String], outcome: ClientSession.Outcome, actions: [ClientSession.Action]) {
        var session = ClientSession(
            envelope: envelope,
            heloName: "mx.example.test",
            tlsPolicy: tls,
            credentials: credentials
        )
        var sent: [String] = []
        var actions: [ClientSession.Action] = []
        for text in replies {
            var action = session.receive(Self.reply(text))
            actions.append(action)
            switch action {
            case .send(let lines): sent += lines
            case .requestTLS: sent.append("STARTTLS")
            case .sendMessage:
                sent.append("<message>")
                session.messageSent()
            case .startTLS:
                sent.append("<tls>")
                action = session.tlsEstablished()
                if case .send(let lines) = action { sent += lines }
            case .awaitReply, .close: break
            }
        }
        return (sent, session.outcome, actions)
    }

    @Test func pipelinedDeliveryWithTLS() {
        let (sent, outcome, actions) = Self.run([
            "220 mx.remote.test ESMTP\r\n",
            "250-mx.remote.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
            "220 2.0.0 go ahead\r\n",
            "250-mx.remote.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250 8BITMIME\r\n",
            "250 2.1.0 ok\r\n", "250 2.1.5 ok\r\n", "250 2.1.5 ok\r\n", "354 go\r\n",
            "250 2.0.0 queued as X\r\n", "221 2.0.0 bye\r\n",
        ])
        #expect(
            sent == [
                "EHLO mx.example.test", "STARTTLS", "<tls>", "EHLO mx.example.test",
                "MAIL FROM:<alice@example.test> SIZE=1234", "RCPT TO:<bob@remote.test>", "RCPT TO:<carol@remote.test>",
                "DATA", "<message>", "QUIT",
            ]
        )
        #expect(outcome.tls)
        #expect(
            outcome.recipients.allSatisfy {
                if case .delivered(let reply) = $0 {
                    reply.code == 250 && reply.lines == ["queued as X"]
                } else {
                    false
                }
            }
        )
        #expect(actions.last == .close)
    }

    @Test func perRecipientReplies() {
        let (sent, outcome, _) = Self.run([
            "220 hi\r\n", "250 mx\r\n", "250 ok\r\n", "550 5.1.1 no bob\r\n", "250 ok\r\n", "354 go\r\n",
            "250 2.0.0 done\r\n", "221 bye\r\n",
        ])
        #expect(
            sent == [
                "EHLO mx.example.test", "MAIL FROM:<alice@example.test>", "RCPT TO:<bob@remote.test>",
                "RCPT TO:<carol@remote.test>", "DATA", "<message>", "QUIT",
            ]
        )
        guard case .failed(let bob) = outcome.recipients[0], case .delivered = outcome.recipients[1] else {
            Issue.record("\(outcome.recipients)")
            return
        }
        #expect(bob.enhancedCode == EnhancedStatusCode(5, 1, 1))
    }

    @Test func temporaryAndPermanentFailures() {
        // 451 to the message: both deferred.
        let later = Self.run([
            "220 hi\r\n", "250 mx\r\n", "250 ok\r\n", "250 ok\r\n", "250 ok\r\n", "354 go\r\n",
            "451 4.3.0 try later\r\n",
            "221 bye\r\n",
        ]).outcome
        #expect(later.recipients.allSatisfy { if case .deferred = $0 { true } else { false } })
        // Every RCPT refused: no DATA at all.
        let refused = Self.run(["220 hi\r\n", "250 mx\r\n", "250 ok\r\n", "550 no\r\n", "450 busy\r\n", "221 bye\r\n"])
        #expect(!refused.sent.contains("DATA"))
        #expect(
            refused.outcome.recipients.map {
                if case .failed = $0 { "f" } else if case .deferred = $0 { "d" } else { "?" }
            } == ["f", "d"]
        )
        // The greeting refuses: nobody is tried, and 554 is permanent.
        let closed = Self.run(["554 5.7.1 go away\r\n", "221 bye\r\n"])
        #expect(closed.sent == ["QUIT"])
        #expect(closed.outcome.recipients.allSatisfy { if case .failed = $0 { true } else { false } })
        // 421 mid-way: the server closes; accepted recipients are not delivered.
        let dropped = Self.run(["220 hi\r\n", "250 mx\r\n", "250 ok\r\n", "250 ok\r\n", "421 4.4.2 shutting down\r\n"])
        #expect(dropped.actions.last == .close)
        #expect(dropped.outcome.recipients.allSatisfy { if case .deferred = $0 { true } else { false } })
    }

    @Test func pipelinedRefusals() {
        // MAIL refused while pipelining: the RCPT and DATA replies that follow change nothing.
        let mail = Self.run([
            "220 hi\r\n", "250-mx\r\n250 PIPELINING\r\n", "553 5.1.8 bad sender\r\n", "503 no mail\r\n",
            "503 no mail\r\n",
            "503 5.5.1 no valid recipients\r\n", "221 bye\r\n",
        ])
        #expect(!mail.sent.contains("<message>"))
        #expect(
            mail.outcome.recipients.allSatisfy { if case .failed(let reply) = $0 { reply.code == 553 } else { false } }
        )
        // Recipients refused but the server says 354 anyway: an empty data ends it (RFC 2920).
        let empty = Self.run([
            "220 hi\r\n", "250-mx\r\n250 PIPELINING\r\n", "250 ok\r\n", "550 no\r\n", "550 no\r\n", "354 go\r\n",
            "554 no data\r\n",
            "221 bye\r\n",
        ])
        #expect(empty.sent.suffix(2) == [".", "QUIT"])
        #expect(!empty.sent.contains("<message>"))
    }

    @Test func heloFallbackAndWhatTheServerCannotTake() {
        let helo = Self.run(["220 old\r\n", "502 5.5.1 what?\r\n", "250 old.example\r\n", "250 ok\r\n"])
        #expect(
            helo.sent.prefix(3) == ["EHLO mx.example.test", "HELO mx.example.test", "MAIL FROM:<alice@example.test>"]
        )
        // SIZE, SMTPUTF8 and 8BITMIME are checked before anything is sent.
        var big = Self.envelope
        big.size = 20_000_000
        let tooBig = Self.run(["220 hi\r\n", "250-mx\r\n250 SIZE 10000000\r\n", "221 bye\r\n"], envelope: big)
        #expect(tooBig.sent == ["EHLO mx.example.test", "QUIT"])
        #expect(
            tooBig.outcome.recipients.allSatisfy {
                if case .failed(let reply) = $0 { reply.enhancedCode == EnhancedStatusCode(5, 3, 4) } else { false }
            }
        )
        var utf8 = Self.envelope
        utf8.smtpUTF8 = true
        let noUTF8 = Self.run(["220 hi\r\n", "250 mx\r\n", "221 bye\r\n"], envelope: utf8)
        #expect(
            noUTF8.outcome.recipients.allSatisfy {
                if case .failed(let reply) = $0 { reply.enhancedCode == EnhancedStatusCode(5, 6, 7) } else { false }
            }
        )
        var eight = Self.envelope
        eight.eightBit = true
        let with8 = Self.run(["220 hi\r\n", "250-mx\r\n250 8BITMIME\r\n", "250 ok\r\n"], envelope: eight)
        #expect(with8.sent[1] == "MAIL FROM:<alice@example.test> BODY=8BITMIME")
    }

    @Test func tlsPolicies() {
        let required = Self.run(["220 hi\r\n", "250 mx\r\n", "221 bye\r\n"], tls: .required)
        #expect(required.sent == ["EHLO mx.example.test", "QUIT"])
        #expect(
            required.outcome.recipients.allSatisfy {
                if case .deferred(let reply) = $0 { reply.enhancedCode == EnhancedStatusCode(4, 7, 10) } else { false }
            }
        )
        // Opportunistic: STARTTLS refused, go on in plaintext.
        let refused = Self.run([
            "220 hi\r\n", "250-mx\r\n250 STARTTLS\r\n", "454 4.7.0 TLS not available\r\n", "250 ok\r\n",
        ])
        #expect(
            refused.sent == [
                "EHLO mx.example.test", "STARTTLS", "MAIL FROM:<alice@example.test>", "RCPT TO:<bob@remote.test>",
            ]
        )
        #expect(!refused.outcome.tls)
    }

    @Test func lostConnectionsDeferWhatIsNotDone() {
        var session = ClientSession(envelope: Self.envelope, heloName: "h")
        _ = session.receive(Self.reply("220 hi\r\n"))
        _ = session.receive(Self.reply("250 mx\r\n"))
        _ = session.receive(Self.reply("250 ok\r\n"))
        _ = session.receive(Self.reply("250 ok\r\n"))
        session.connectionLost(.connection("connection reset"), server: "mx.remote.test [192.0.2.1]")
        #expect(
            session.outcome.recipients.allSatisfy {
                if case .deferred(let reply) = $0 {
                    reply.logText == "451 4.4.2 mx.remote.test [192.0.2.1]: connection reset"
                } else {
                    false
                }
            }
        )
        #expect(session.timeout == .seconds(300))
    }

    @Test(
        arguments: [
            (
                ClientSession.Failure.cannotConnect("connection refused"), "4.4.1", false,
                "cannot connect: connection refused"
            ),
            (
                .timedOut("waiting for a reply", seconds: 300), "4.4.2", false,
                "timed out after 300 s waiting for a reply"
            ),
            (.closedByServer, "4.4.2", false, "the server closed the connection"),
            (
                .protocolViolation("the server sent data after its reply to STARTTLS"), "4.4.2", false,
                "the server sent data after its reply to STARTTLS"
            ),
            (.tlsHandshake("no shared cipher"), "4.7.5", true, "TLS handshake failed: no shared cipher"),
            (.untrustedCertificate("expired"), "4.7.5", true, "TLS: certificate not trusted: expired"),
            (.connection("reset by peer"), "4.4.2", false, "reset by peer"),
        ]
    )
    func failuresCarryTheirCode(failure: ClientSession.Failure, code: String, handshake: Bool, text: String) {
        #expect(failure.enhancedCode.description == code)
        #expect(failure.isHandshake == handshake)
        #expect(failure.description == text)
    }

    /// STARTTLS is an action of its own, so the driver can arm the injection check before it
    /// sends the command, without comparing strings.
    @Test func startTLSIsRequestedByItsOwnAction() {
        let (_, _, actions) = Self.run(["220 hi\r\n", "250-mx\r\n250 STARTTLS\r\n"])
        #expect(actions == [.send(["EHLO mx.example.test"]), .requestTLS])
        let (_, _, never) = Self.run(["220 hi\r\n", "250-mx\r\n250 STARTTLS\r\n"], tls: .never)
        #expect(!never.contains(.requestTLS))
    }

    // MARK: A relay's login

    static let login = ClientSession.Credentials(username: "petrel@relay.test", password: "pa55 word")

    @Test func loginToTheRelayAfterTLS() {
        let (sent, outcome, _) = Self.run(
            [
                "220 relay\r\n", "250-relay\r\n250 STARTTLS\r\n", "220 go ahead\r\n",
                "250-relay\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n", "235 2.7.0 ok\r\n",
                "250 ok\r\n", "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 queued\r\n", "221 bye\r\n",
            ],
            tls: .required,
            credentials: Self.login
        )
        // AUTH PLAIN: authzid empty, then user and password, NUL-separated (RFC 4616).
        let plain = Data("\0petrel@relay.test\0pa55 word".utf8).base64EncodedString()
        #expect(
            sent == [
                "EHLO mx.example.test", "STARTTLS", "<tls>", "EHLO mx.example.test", "AUTH PLAIN \(plain)",
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<bob@remote.test>", "RCPT TO:<carol@remote.test>", "DATA", "<message>", "QUIT",
            ]
        )
        #expect(outcome.recipients.allSatisfy { if case .delivered = $0 { true } else { false } })
    }

    @Test func aRefusedOrImpossibleLoginDefers() {
        // Refused: our configuration is wrong, which a retry (after a fix) cures; never a bounce.
        let refused = Self.run(
            [
                "220 relay\r\n", "250-relay\r\n250 STARTTLS\r\n", "220 go ahead\r\n",
                "250-relay\r\n250 AUTH PLAIN\r\n", "535 5.7.8 bad credentials\r\n", "221 bye\r\n",
            ],
            tls: .required,
            credentials: Self.login
        )
        #expect(refused.sent.last == "QUIT")
        #expect(
            refused.outcome.recipients.allSatisfy {
                if case .deferred(let reply) = $0 { reply.enhancedCode == EnhancedStatusCode(4, 7, 8) } else { false }
            }
        )
        // No PLAIN offered: no login attempted, nothing sent in the clear.
        let noPlain = Self.run(
            [
                "220 relay\r\n", "250-relay\r\n250 STARTTLS\r\n", "220 go ahead\r\n",
                "250-relay\r\n250 AUTH CRAM-MD5\r\n", "221 bye\r\n",
            ],
            tls: .required,
            credentials: Self.login
        )
        #expect(!noPlain.sent.contains { $0.hasPrefix("AUTH") })
        // A session without TLS never sends the password, whatever the policy says.
        let plaintext = Self.run(
            ["220 relay\r\n", "250-relay\r\n250 AUTH PLAIN\r\n", "221 bye\r\n"],
            tls: .never,
            credentials: Self.login
        )
        #expect(plaintext.sent == ["EHLO mx.example.test", "QUIT"])
        #expect(plaintext.outcome.recipients.allSatisfy { if case .deferred = $0 { true } else { false } })
    }

    @Test func recipientsAnsweredTellsWhetherAnotherMXMayBeAsked() {
        let greeting = Self.run(["421 4.3.2 busy\r\n"])
        #expect(!greeting.outcome.recipientsAnswered)
        let mail = Self.run(["220 hi\r\n", "250 mx\r\n", "451 4.3.0 later\r\n", "221 bye\r\n"])
        #expect(!mail.outcome.recipientsAnswered)
        let rcpt = Self.run(["220 hi\r\n", "250 mx\r\n", "250 ok\r\n", "451 4.7.1 greylisted\r\n"])
        #expect(rcpt.outcome.recipientsAnswered)
    }
}
