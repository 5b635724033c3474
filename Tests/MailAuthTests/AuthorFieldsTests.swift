import MailAuth
import MailCore
import Testing

/// What a receiver that judges the author must be able to read (`AuthorFields`), where the
/// scanner ends the header section (`MessageScanner.malformedLine`), and which Authentication-
/// Results fields claim our authserv-id.
struct AuthorFieldsTests {
    static func scan(_ message: String) -> MessageScanner.Scanned {
        var scanner = MessageScanner(now: 0, dkim: false)
        scanner.append(Array(message.utf8))
        return scanner.finish()
    }

    @Test(arguments: [
        ("From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n", nil),
        ("From: Alice <a@example.com>, b@example.org\r\n\r\n", nil),
        ("From: \"Quoted, Name\" <a@example.com> (comment)\r\n\r\n", nil),
        ("from : a@example.com\r\n\r\n", nil),
        ("From: a@example.com\r\n", nil),
        ("Subject: x\r\n\r\nbody\r\n", AuthorFields.Problem.noFrom),
        ("From: a@example.com\r\nFrom: b@example.com\r\n\r\n", .severalFrom(2)),
        ("From: <\r\n\r\n", .unreadable(field: "From", value: "<")),
        ("From: someone\r\n\r\n", .unreadable(field: "From", value: "someone")),
        ("From: a@[192.0.2.1]\r\n\r\n", .unreadable(field: "From", value: "a@[192.0.2.1]")),
        (
            "From: <ceo@example.com> <a@example.com>\r\n\r\n",
            .unreadable(field: "From", value: "<ceo@example.com> <a@example.com>")
        ),
        (
            "From: ceo@example.com:a@example.com;\r\n\r\n",
            .unreadable(field: "From", value: "ceo@example.com:a@example.com;")
        ),
        ("From:\r\n\r\n", .unreadable(field: "From", value: "")),
        ("X-Junk\r\nFrom: a@example.com\r\n\r\n", .malformedHeader(line: 1)),
        ("From: a@example.com\r\nnot a field\r\nFrom: b@evil.example\r\n\r\n", .malformedHeader(line: 2)),
        (" folded\r\nFrom: a@example.com\r\n\r\n", .malformedHeader(line: 1)),
        ("just a line\r\n\r\nand another\r\n", .malformedHeader(line: 1)),
        ("From: a@example.com\r\nSubject: x\r\n: no name\r\n\r\n", .malformedHeader(line: 3)),
        ("From: a@example.com\r\nno colon at the end", .malformedHeader(line: 2)),
    ])
    func authorProblems(_ message: String, _ expected: AuthorFields.Problem?) {
        let scanned = Self.scan(message)
        let problem = AuthorFields.problem(
            header: scanned.header ?? HeaderSection(fields: []),
            malformedLine: scanned.malformedLine
        )
        #expect(problem == expected, "\(message.debugDescription)")
    }

    /// The submission rule: which addresses the user must own, what is added, what is refused.
    @Test func submissionRule() throws {
        func submission(_ header: String) -> Result<AuthorFields.Submission, AuthorFields.Problem> {
            let scanned = Self.scan(header + "\r\nbody\r\n")
            return AuthorFields.submission(header: scanned.header!, malformedLine: scanned.malformedLine)
        }
        let complete = try submission(
            "From: A <a@example.com>, b@example.com\r\nSender: s@example.com\r\nDate: x\r\nMessage-ID: <y>\r\n"
        ).get()
        #expect(complete.senders.map(\.field) == ["From", "From", "Sender"])
        #expect(complete.senders.map(\.address) == ["a@example.com", "b@example.com", "s@example.com"])
        #expect(!complete.addFrom && !complete.addDate && !complete.addMessageID)
        let bare = try submission("Subject: x\r\n").get()
        #expect(bare.senders.isEmpty && bare.addFrom && bare.addDate && bare.addMessageID)
        let senderOnly = try submission("Sender: s@example.com\r\n").get()
        #expect(senderOnly.senders.map(\.field) == ["Sender"] && senderOnly.addFrom)
        #expect(throws: AuthorFields.Problem.severalFrom(2)) {
            try submission("From: a@x.example\r\nFrom: b@x.example\r\n").get()
        }
        #expect(throws: AuthorFields.Problem.unreadable(field: "Sender", value: "<a@x.example> <b@x.example>")) {
            try submission("From: a@x.example\r\nSender: <a@x.example> <b@x.example>\r\n").get()
        }
        #expect(throws: AuthorFields.Problem.malformedHeader(line: 2)) {
            try submission("From: a@x.example\r\nX-Junk\r\n").get()
        }
    }

    /// Where the header section ends, and what follows it, is the same however the message is
    /// cut into appends: the caller writes the header it was given, then `carried`, then the
    /// rest of the append from `offset`, and gets the message back.
    @Test(arguments: [
        "From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
        "From: a@example.com\r\nnot a field\r\nAuthentication-Results: x\r\n\r\nbody\r\n",
        "\r\nno header at all\r\n",
        " folded first\r\n\r\n",
    ])
    func theHeaderEndIsFoundWhereverTheMessageIsCut(_ message: String) {
        let bytes = Array(message.utf8)
        for split in 0...bytes.count {
            var scanner = MessageScanner(now: 0, dkim: false)
            var output: [UInt8] = []
            var headerDone = false
            for part in [bytes[..<split], bytes[split...]] {
                if headerDone {
                    output += part
                    scanner.append(part)
                } else if let end = scanner.append(part) {
                    headerDone = true
                    output += scanner.header?.bytes ?? []
                    output += end.carried + part.dropFirst(end.offset)
                }
            }
            let scanned = scanner.finish()
            if !headerDone { output = scanned.header?.bytes ?? [] }
            #expect(output == bytes, "split at \(split)")
        }
    }

    /// RFC 8601 §2.2 allows the authserv-id as a token or a quoted string, after comments; any
    /// spelling that names us is dropped from incoming mail (§5).
    @Test(arguments: [
        ("Authentication-Results: mx.example.com; spf=pass", "mx.example.com"),
        ("Authentication-Results: MX.Example.COM; dkim=pass", "mx.example.com"),
        ("Authentication-Results: \"mx.example.com\"; dmarc=pass", "mx.example.com"),
        ("Authentication-Results: (hi) \"MX.example.com.\"; dmarc=pass", "mx.example.com"),
        ("Authentication-Results: mx.example.com.; dmarc=pass", "mx.example.com"),
        ("Authentication-Results: mx.example.com 1; dmarc=pass", "mx.example.com"),
        ("Authentication-Results: (a \\) b) mx.example.com;", "mx.example.com"),
        ("Authentication-Results: \"mx.exa\\mple.com\"; none", "mx.example.com"),
        ("Authentication-Results: ; none", nil),
        ("Subject: mx.example.com", nil),
    ])
    func authservIDs(_ field: String, _ id: String?) {
        let header = HeaderSection(parsing: Array((field + "\r\n").utf8))
        #expect(AuthenticationResults.authservID(of: header.fields[0]) == id, "\(field)")
    }
}
