import SMTPCore
import Testing

@Suite struct SMTPReplyTests {
    @Test func singleLineWithEnhancedCode() {
        #expect(SMTPReply(250, EnhancedStatusCode(2, 1, 5), "OK").description == "250 2.1.5 OK\r\n")
    }

    @Test func multiLineWithoutEnhancedCode() {
        let reply = SMTPReply.ehlo(hostname: "mx.example", clientName: "c", keywords: ["PIPELINING", "SIZE 10"])
        #expect(reply.description == "250-mx.example Hello c\r\n250-PIPELINING\r\n250 SIZE 10\r\n")
    }

    @Test func multiLineWithEnhancedCodeOnEveryLine() {
        #expect(
            SMTPReply.help.description.split(separator: "\r\n").allSatisfy {
                $0.hasPrefix("214") && $0.contains("2.0.0")
            }
        )
    }

    @Test func lineBreaksInsideTextCannotSplitTheReply() {
        let reply = SMTPReply(550, EnhancedStatusCode(5, 1, 1), "<a\r\n250 OK@b>: unknown\u{0}")
        #expect(reply.description == "550 5.1.1 <a  250 OK@b>: unknown \r\n")
    }

    /// RFC 2034: the greeting and the EHLO/HELO replies start with our host name, not a code.
    @Test func greetingAndHeloCarryTheHostNameFirst() {
        #expect(SMTPReply.greeting(hostname: "mx.example").description == "220 mx.example ESMTP Petrel\r\n")
        #expect(SMTPReply.helo(hostname: "mx.example").description == "250 mx.example\r\n")
    }

    @Test(arguments: [
        SMTPReply.ok, .resetOK, .cannotVerify, .commandUnrecognized, .noValidRecipients, .tooManyRecipients,
        .insufficientStorage, .localError, .utf8AddressNeedsSMTPUTF8, .help,
        .senderOK("<a@b>"), .recipientOK("<a@b>"), .messageAccepted(id: "X"), .chunkAccepted(octets: 3),
        .closing(hostname: "h"), .commandLineTooLong(limit: 512), .syntaxError("x"), .argumentError("x"),
        .addressSyntaxError("x", sender: true), .notImplemented("X"), .badSequence("x"), .unknownParameter("X"),
        .messageTooLarge(limit: 1), .messageRefused("x"), .tooManyErrors(hostname: "h"), .timeout(hostname: "h"),
        .shuttingDown(hostname: "h"), .tooManyConnections(hostname: "h"),
    ])
    func everyCatalogueReplyHasAMatchingEnhancedCode(_ reply: SMTPReply) throws {
        let enhanced = try #require(reply.enhancedCode)
        #expect(Int(enhanced.statusClass) == reply.code / 100)
    }
}
