import MailCore
import NIOCore
import SMTPCore
import Testing

/// The session's STARTTLS and AUTH states, in memory (the live tests cover the same over sockets).
@Suite struct SubmissionSessionTests {
    static let submission = ServerSession.Configuration(
        hostname: "mx.test",
        limits: SMTPLimits(),
        startTLS: true,
        submission: true,
        authMechanisms: ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
    )

    /// A submission session that has done STARTTLS and said EHLO again.
    func inTLS() async -> SessionHarness {
        var harness = await SessionHarness(configuration: Self.submission)
        await harness.send("EHLO laptop.example\r\n")
        #expect(harness.session.extensions.contains("STARTTLS"))
        #expect(!harness.session.extensions.contains { $0.hasPrefix("AUTH") })
        #expect(await harness.send("STARTTLS\r\n") == ["220"])
        #expect(harness.continuations.last == .startTLS)
        await harness.tlsEstablished(TLSInfo(version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256"))
        #expect(await harness.send("EHLO laptop.example\r\n") == ["250"])
        return harness
    }

    @Test func startTLSForgetsTheSessionAndIsOfferedOnce() async {
        var harness = await SessionHarness(configuration: Self.submission)
        await harness.send("EHLO laptop.example\r\n")
        #expect(await harness.send("MAIL FROM:<a@b.example>\r\nSTARTTLS\r\n") == ["530", "220"])
        harness = await SessionHarness(configuration: Self.submission)
        await harness.send("EHLO laptop.example\r\n")
        await harness.send("STARTTLS\r\n")
        #expect(await harness.sendForText("AUTH PLAIN\r\n") == ["503 5.5.1 Bad sequence of commands: send EHLO first"])
        await harness.send("EHLO laptop.example\r\n")
        #expect(!harness.session.extensions.contains("STARTTLS"))
        #expect(harness.session.extensions.contains("AUTH PLAIN LOGIN SCRAM-SHA-256"))
        #expect(
            await harness.sendForText("STARTTLS\r\n") == ["503 5.5.1 Bad sequence of commands: TLS is already active"]
        )
    }

    @Test func authBeforeTLSIs538AndNotOfferedOnSMTP() async {
        var harness = await SessionHarness(configuration: Self.submission)
        await harness.send("EHLO laptop.example\r\n")
        #expect(await harness.sendForText("AUTH PLAIN AGEAYg==\r\n").first?.hasPrefix("538 5.7.11") == true)
        var smtp = await SessionHarness(configuration: .init(hostname: "mx.test", limits: SMTPLimits(), startTLS: true))
        await smtp.send("EHLO relay.example\r\n")
        #expect(await smtp.send("AUTH PLAIN AGEAYg==\r\n") == ["503"])
        #expect(await smtp.send("MAIL FROM:<a@b.example>\r\n") == ["250"], "no AUTH needed for mail to us")
    }

    @Test func plainSuccessThenOwnSenderOnly() async {
        var harness = await self.inTLS()
        #expect(await harness.send("MAIL FROM:<alice@mx.test>\r\n") == ["530"])
        harness.authenticationSteps = [.succeeded(user: "alice@mx.test")]
        #expect(
            await harness.sendForText("AUTH PLAIN AGFsaWNlQG14LnRlc3QAcHc=\r\n") == [
                "235 2.7.0 Authentication successful"
            ]
        )
        #expect(harness.authenticationInput == [Array("\0alice@mx.test\0pw".utf8)])
        #expect(harness.session.authenticatedUser == "alice@mx.test")
        #expect(await harness.send("AUTH PLAIN\r\n") == ["503"])
        harness.senderVerdict = .rejected(.senderNotOwned("<bob@mx.test>"))
        #expect(await harness.sendForText("MAIL FROM:<bob@mx.test>\r\n").first?.hasPrefix("553 5.7.1") == true)
        harness.senderVerdict = .accepted
        harness.verdicts["<friend@remote.example>"] = .relay
        #expect(
            await harness.send("MAIL FROM:<alice@mx.test>\r\nRCPT TO:<friend@remote.example>\r\nDATA\r\nhi\r\n.\r\n")
                == [
                    "250", "250", "354", "250",
                ]
        )
        let stored = harness.stored[0]
        #expect(stored.envelope.remoteRecipients == [Mailbox("friend@remote.example")!])
    }

    @Test func multiStepExchangeCancelAndMalformed() async {
        var harness = await self.inTLS()
        harness.authenticationSteps = [.challenge(Array("Username:".utf8)), .challenge(Array("Password:".utf8))]
        #expect(await harness.sendForText("AUTH LOGIN\r\n") == ["334 VXNlcm5hbWU6"])
        #expect(harness.continuations.last == .saslResponse)
        // A response line is data, never a command, even when it looks like one ("QUIT" is base64).
        #expect(await harness.sendForText("QUIT\r\n") == ["334 UGFzc3dvcmQ6"])
        #expect(harness.authenticationInput.last == Base64.decode("QUIT"))
        #expect(
            await harness.sendForText("NOOP!\r\n") == [
                "501 5.5.2 Malformed authentication exchange: the response is not valid base64"
            ]
        )
        harness.authenticationSteps = [.challenge([]), .challenge([])]
        #expect(await harness.send("AUTH PLAIN\r\n") == ["334"])
        #expect(await harness.sendForText("*\r\n") == ["501 5.7.0 Authentication cancelled"])
        // The exchange hears of it (and counts it as a failure): "*" in the harness's record.
        #expect(harness.authenticationInput.last == .some(Array("*".utf8)))
        #expect(await harness.send("AUTH PLAIN =\r\n") == ["334"])
        #expect(harness.authenticationInput.last == .some([]))
        #expect(await harness.send("\(String(repeating: "A", count: 13_000))\r\n") == ["501"])
        harness.authenticationSteps = [.failed(.authenticationFailed)]
        #expect(await harness.sendForText("AUTH PLAIN AGFsaWNlAHdyb25n\r\n").first?.hasPrefix("535 5.7.8") == true)
        #expect(await harness.send("AUTH X-UNKNOWN\r\n") == ["504"])
        #expect(await harness.send("AUTH PLAIN !!!\r\n") == ["501"])
        #expect(await harness.send("NOOP\r\n") == ["250"])
    }

    @Test func blockedClientIsClosed() async {
        var harness = await self.inTLS()
        harness.authenticationSteps = [.failed(.tooManyAuthenticationFailures(hostname: "mx.test"))]
        #expect(await harness.send("AUTH PLAIN AGEAYg==\r\nNOOP\r\n") == ["421"])
        #expect(harness.closed)
    }

    @Test func implicitTLSStartsInTLS() async {
        var harness = await SessionHarness(
            configuration: .init(
                hostname: "mx.test",
                limits: SMTPLimits(),
                startTLS: true,
                implicitTLS: true,
                submission: true,
                authMechanisms: ["PLAIN"]
            )
        )
        await harness.send("EHLO laptop.example\r\n")
        #expect(harness.session.extensions.contains("AUTH PLAIN"))
        #expect(!harness.session.extensions.contains("STARTTLS"))
        #expect(await harness.send("STARTTLS\r\n") == ["503"])
    }

    /// The one-reply invariant under random dialogues, STARTTLS and AUTH included.
    @Test func randomSubmissionDialogues() async {
        let lines = [
            "EHLO a\r\n", "STARTTLS\r\n", "AUTH PLAIN\r\n", "AUTH LOGIN dXNlcg==\r\n", "AUTH SCRAM-SHA-256 =\r\n",
            "*\r\n",
            "QUIT\r\n", "AGFiAGM=\r\n", "MAIL FROM:<a@mx.test>\r\n", "RCPT TO:<b@remote.example>\r\n", "DATA\r\n",
            "x\r\n.\r\n", "BDAT 2 LAST\r\nab", "RSET\r\n", "NOOP\r\n", "AUTH X\r\n",
        ]
        let steps: [ServerSession.AuthenticationStep] = [
            .challenge([]), .challenge(Array("x".utf8)), .succeeded(user: "a@mx.test"), .failed(.authenticationFailed),
        ]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var harness = await SessionHarness(configuration: Self.submission)
            harness.authenticationSteps = (0..<20).map { _ in steps.randomElement(using: &generator)! }
            harness.verdicts["<b@remote.example>"] = .relay
            for _ in 0..<30 {
                if Bool.random(using: &generator) {
                    await harness.tlsEstablished(TLSInfo(version: "TLSv1.3", cipher: nil))
                }
                let chosen = (0..<Int.random(in: 1...4, using: &generator)).map { _ in
                    lines.randomElement(using: &generator)!
                }
                await harness.send(chosen.joined())
                if harness.closed { break }
            }
        }
    }
}
