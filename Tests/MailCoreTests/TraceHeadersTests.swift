import MailCore
import Testing

@Suite struct MessageDateTests {
    @Test(arguments: [
        (Int64(0), 0, "Thu, 1 Jan 1970 00:00:00 +0000"),
        (Int64(1_795_945_306), 0, "Sun, 29 Nov 2026 09:41:46 +0000"),
        (Int64(1_795_945_306), 3600, "Sun, 29 Nov 2026 10:41:46 +0100"),
        (Int64(1_795_945_306), -(9 * 3600 + 1800), "Sun, 29 Nov 2026 00:11:46 -0930"),
        (Int64(951_782_400), 0, "Tue, 29 Feb 2000 00:00:00 +0000"),
        (Int64(-1), 0, "Wed, 31 Dec 1969 23:59:59 +0000"),
        (Int64(4_107_542_400), 0, "Mon, 1 Mar 2100 00:00:00 +0000"),
    ])
    func rendersRFC5322(seconds: Int64, offset: Int, expected: String) {
        #expect(MessageDate(secondsSince1970: seconds, utcOffsetSeconds: offset).description == expected)
    }
}

@Suite struct TraceHeadersTests {
    func headers(recipient: ForwardPath?) -> TraceHeaders {
        TraceHeaders(
            heloName: "client.example.net",
            clientAddressLiteral: "[192.0.2.7]",
            serverHostname: "mx.example.test",
            protocolKeyword: "ESMTP",
            id: "1K1CWD0P6R0NXX",
            recipient: recipient,
            date: MessageDate(secondsSince1970: 1_795_945_306),
            reversePath: .mailbox(Mailbox("bob@example.net")!)
        )
    }

    @Test func singleRecipient() {
        #expect(
            self.headers(recipient: .mailbox(Mailbox("alice@example.test")!)).rendered
                == "Return-Path: <bob@example.net>\r\n"
                + "Received: from client.example.net ([192.0.2.7])\r\n"
                + "\tby mx.example.test (Petrel) with ESMTP id 1K1CWD0P6R0NXX\r\n"
                + "\tfor <alice@example.test>;\r\n"
                + "\tSun, 29 Nov 2026 09:41:46 +0000\r\n"
        )
    }

    @Test func severalRecipientsAreNotNamed() {
        let rendered = self.headers(recipient: nil).rendered
        #expect(!rendered.contains("for <"))
        #expect(rendered.hasSuffix("id 1K1CWD0P6R0NXX;\r\n\tSun, 29 Nov 2026 09:41:46 +0000\r\n"))
    }

    @Test(arguments: [
        (true, false, false, false, "ESMTP"),
        (false, false, false, false, "SMTP"),
        (true, false, true, false, "ESMTPS"),
        (true, false, true, true, "ESMTPSA"),
        (true, false, false, true, "ESMTPA"),
        (true, true, false, false, "UTF8SMTP"),
        (true, true, true, true, "UTF8SMTPSA"),
    ])
    func protocolKeyword(extended: Bool, utf8: Bool, tls: Bool, auth: Bool, expected: String) {
        #expect(
            TraceHeaders.protocolKeyword(extended: extended, smtpUTF8: utf8, tls: tls, authenticated: auth) == expected
        )
    }

    @Test func envelopeMailboxesAreDeliveredOnce() {
        let alice = Mailbox("alice@example.test")!
        let bob = Mailbox("bob@example.test")!
        let envelope = Envelope(
            reversePath: .null,
            recipients: [
                EnvelopeRecipient(forwardPath: .mailbox(alice), mailboxes: [alice]),
                EnvelopeRecipient(forwardPath: .mailbox(Mailbox("alice+x@example.test")!), mailboxes: [alice]),
                EnvelopeRecipient(forwardPath: .postmaster, mailboxes: [bob, alice]),
            ]
        )
        #expect(envelope.mailboxes == [alice, bob])
    }
}
