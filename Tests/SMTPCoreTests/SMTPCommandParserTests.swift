import MailCore
import SMTPCore
import Testing

@Suite struct SMTPCommandParserTests {
    static func parse(_ line: String) -> Result<SMTPCommand, SMTPCommandError> {
        SMTPCommandParser.parse(Array(line.utf8))
    }

    static func parseBytes(_ line: [UInt8]) -> Result<SMTPCommand, SMTPCommandError> {
        SMTPCommandParser.parse(line)
    }

    @Test(arguments: [
        ("EHLO client.example", SMTPCommand.ehlo("client.example")),
        ("ehlo client.example", .ehlo("client.example")),
        ("EHLO client.example  ", .ehlo("client.example")),
        ("EHLO [192.0.2.1]", .ehlo("[192.0.2.1]")),
        ("EHLO [IPv6:::1]", .ehlo("[IPv6:::1]")),
        ("EHLO my_host", .ehlo("my_host")),
        ("HELO client", .helo("client")),
        ("DATA", .data),
        ("data", .data),
        ("RSET", .rset),
        ("NOOP", .noop),
        ("NOOP anything goes", .noop),
        ("QUIT", .quit),
        ("HELP", .help),
        ("HELP MAIL", .help),
        ("VRFY alice", .vrfy("alice")),
        ("EXPN list", .expn("list")),
        ("STARTTLS", .startTLS),
        ("AUTH PLAIN", .auth(mechanism: "PLAIN", initialResponse: nil)),
        ("auth plain AGFsaWNlAHNlY3JldA==", .auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHNlY3JldA==")),
        ("BDAT 0 LAST", .bdat(size: 0, last: true)),
        ("BDAT 1000", .bdat(size: 1000, last: false)),
        ("bdat 5 last", .bdat(size: 5, last: true)),
        ("BDAT 18446744073709551615", .bdat(size: UInt64.max, last: false)),
    ])
    func simpleCommands(line: String, expected: SMTPCommand) {
        #expect(Self.parse(line) == .success(expected))
    }

    @Test func mailFromVariants() throws {
        let alice = ReversePath.mailbox(Mailbox("alice@example.com")!)
        #expect(Self.parse("MAIL FROM:<alice@example.com>") == .success(.mail(alice, MailParameters())))
        #expect(Self.parse("mail from:<alice@example.com>") == .success(.mail(alice, MailParameters())))
        #expect(Self.parse("MAIL FROM: <alice@example.com>") == .success(.mail(alice, MailParameters())))
        #expect(Self.parse("MAIL FROM:<>") == .success(.mail(.null, MailParameters())))
        #expect(
            Self.parse("MAIL FROM:<alice@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8")
                == .success(.mail(alice, MailParameters(size: 1000, body: .eightBitMIME, smtpUTF8: true)))
        )
        #expect(
            Self.parse("MAIL FROM:<alice@example.com> body=7bit size=0")
                == .success(.mail(alice, MailParameters(size: 0, body: .sevenBit)))
        )
        #expect(Self.parse("MAIL FROM:<alice@example.com> AUTH=<>") == .success(.mail(alice, MailParameters())))
        #expect(
            Self.parse("MAIL FROM:<alice@example.com> SIZE=99999999999999999999")
                == .success(.mail(alice, MailParameters(size: UInt64.max)))
        )
    }

    @Test func rcptToVariants() {
        #expect(Self.parse("RCPT TO:<alice@example.com>") == .success(.rcpt(.mailbox(Mailbox("alice@example.com")!))))
        #expect(Self.parse("RCPT TO:<Postmaster>") == .success(.rcpt(.postmaster)))
        #expect(Self.parse("rcpt to:<postmaster>") == .success(.rcpt(.postmaster)))
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        let line: [UInt8]
        let code: Int
        let enhanced: String
        var testDescription: String { String(decoding: self.line, as: UTF8.self) }

        init(_ line: String, _ code: Int, _ enhanced: String) {
            self.line = Array(line.utf8)
            self.code = code
            self.enhanced = enhanced
        }

        init(bytes: [UInt8], _ code: Int, _ enhanced: String) {
            self.line = bytes
            self.code = code
            self.enhanced = enhanced
        }
    }

    static let refusals: [Refusal] = [
        Refusal("", 500, "5.5.2"),
        Refusal("XYZZY", 500, "5.5.2"),
        Refusal("MAILFROM:<a@b.c>", 500, "5.5.2"),
        Refusal("EHLO", 501, "5.5.4"),
        Refusal("HELO", 501, "5.5.4"),
        Refusal("EHLO bad<name>", 501, "5.5.4"),
        Refusal("EHLO two words", 501, "5.5.4"),
        Refusal("EHLO [300.1.1.1]", 501, "5.5.4"),
        Refusal("DATA now", 501, "5.5.4"),
        Refusal("RSET now", 501, "5.5.4"),
        Refusal("QUIT now", 501, "5.5.4"),
        Refusal("STARTTLS x", 501, "5.5.4"),
        Refusal("VRFY", 501, "5.5.4"),
        Refusal("MAIL", 501, "5.5.4"),
        Refusal("MAIL TO:<a@example.com>", 501, "5.5.4"),
        Refusal("MAIL FROM:a@example.com", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com>x", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> SIZE=big", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> SIZE=", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> SIZE=123456789012345678901", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> SIZE=1 SIZE=2", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> BODY=BINARYMIME", 555, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> BODY=9BIT", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> SMTPUTF8=yes", 501, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> RET=FULL", 555, "5.5.4"),
        Refusal("MAIL FROM:<a@example.com> -X=1", 501, "5.5.4"),
        Refusal("RCPT TO:<>", 501, "5.5.4"),
        Refusal("RCPT TO:<a@example.com> NOTIFY=NEVER", 555, "5.5.4"),
        Refusal("RCPT TO:<victim%foreign.example>", 501, "5.5.4"),
        Refusal("BDAT", 501, "5.5.4"),
        Refusal("BDAT x", 501, "5.5.4"),
        Refusal("BDAT -1", 501, "5.5.4"),
        Refusal("BDAT 10 LATER", 501, "5.5.4"),
        Refusal("BDAT 10 LAST more", 501, "5.5.4"),
        Refusal("BDAT 99999999999999999999 LAST", 501, "5.5.4"),
        Refusal("AUTH", 501, "5.5.4"),
        Refusal(bytes: Array("NOOP".utf8) + [0] + Array("x".utf8), 500, "5.5.2"),
        Refusal(bytes: Array("MAIL FROM:<a".utf8) + [0] + Array("b@example.com>".utf8), 500, "5.5.2"),
        Refusal(bytes: Array("MAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>".utf8), 500, "5.5.2"),
        Refusal(bytes: Array("NOOP\rNOOP".utf8), 500, "5.5.2"),
        Refusal(
            bytes: Array("MAIL FROM:<j".utf8) + [0xC0, 0xAF] + Array("s@example.com> SMTPUTF8".utf8),
            500,
            "5.5.2"
        ),
        Refusal(bytes: Array("MAIL FROM:<j".utf8) + [0x80] + Array("s@example.com> SMTPUTF8".utf8), 500, "5.5.2"),
        Refusal(bytes: [0x4E, 0xC3, 0x96, 0x4F, 0x50], 500, "5.5.2"),
    ]

    @Test(arguments: refusals)
    func refused(_ refusal: Refusal) {
        guard case .failure(let error) = Self.parseBytes(refusal.line) else {
            Issue.record("accepted: \(Self.parseBytes(refusal.line))")
            return
        }
        #expect(error.reply.code == refusal.code)
        #expect(error.reply.enhancedCode?.description == refusal.enhanced)
    }

    @Test func utf8AddressIsParsedAndMarkedNonASCII() throws {
        let result = Self.parseBytes(Array("MAIL FROM:<j\u{f6}s\u{e9}@example.net> SMTPUTF8".utf8))
        guard case .success(.mail(let path, let parameters)) = result else {
            Issue.record("not parsed: \(result)")
            return
        }
        #expect(!path.isASCII)
        #expect(parameters.smtpUTF8)
    }

    @Test func hostileInputNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        let interesting: [UInt8] =
            Array("MAILFROM:RCPTTO<>@\"\\[]. =:,BDATLAST0123456789".utf8) + [0, 0x0D, 0x0A, 0x80, 0xC3, 0xFF]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<80, using: &generator)
            let line = (0..<length).map { _ in
                Bool.random(using: &generator)
                    ? interesting.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            _ = SMTPCommandParser.parse(line)
        }
    }
}
