import Foundation
import Testing

@testable import MailCore

/// The bounce message (RFC 3464, RFC 6522), checked part by part.
struct DeliveryStatusNotificationTests {
    static func report(_ recipients: [DeliveryStatusNotification.Recipient]) -> String {
        let dsn = DeliveryStatusNotification(
            reportingMTA: "mx.example.test",
            sender: "alice@example.test",
            queueID: "1K1D8E33V1ZV23",
            arrivalDate: MessageDate(secondsSince1970: 1_795_950_000),
            date: MessageDate(secondsSince1970: 1_795_950_600),
            recipients: recipients,
            originalHeader: Array("From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: Lunch?\r\n".utf8),
            boundary: "petrel-boundary-1"
        )
        return String(decoding: dsn.rendered, as: UTF8.self)
    }

    @Test func aFailureReport() throws {
        let text = Self.report([
            .init(
                address: "bob@remote.test",
                action: .failed,
                status: "5.1.1",
                remoteMTA: "mx.remote.test",
                diagnostic:
                    "550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown in virtual mailbox table",
                lastAttempt: MessageDate(secondsSince1970: 1_795_950_500)
            ),
            .init(
                address: "carol@gone.test",
                action: .failed,
                status: "5.1.10",
                diagnostic: "gone.test has a null MX (RFC 7505)"
            ),
        ])
        let parts = text.components(separatedBy: "\r\n--petrel-boundary-1")
        #expect(parts.count == 5, "preamble, three parts, and the closing delimiter")
        let header = parts[0]
        #expect(
            header.hasPrefix(
                "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\nTo: <alice@example.test>\r\n"
            )
        )
        #expect(header.contains("\r\nSubject: Undelivered Mail Returned to Sender\r\n"))
        #expect(header.contains("\r\nAuto-Submitted: auto-replied\r\n"))
        #expect(
            header.contains(
                "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"petrel-boundary-1\"\r\n"
            )
        )
        #expect(parts[1].contains("<bob@remote.test>: 550 5.1.1"))
        let status = parts[2]
        #expect(status.hasPrefix("\r\nContent-Type: message/delivery-status\r\n"))
        #expect(status.contains("\r\nReporting-MTA: dns; mx.example.test\r\n"))
        #expect(status.contains("\r\nArrival-Date: Sun, 29 Nov 2026 "))
        #expect(
            status.contains(
                "\r\n\r\nFinal-Recipient: rfc822; bob@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.test\r\nDiagnostic-Code: smtp; 550 5.1.1"
            )
        )
        #expect(
            status.contains("address\r\n\trejected: User unknown in virtual mailbox table\r\nLast-Attempt-Date: "),
            "folded"
        )
        #expect(
            status.contains(
                "\r\n\r\nFinal-Recipient: rfc822; carol@gone.test\r\nAction: failed\r\nStatus: 5.1.10\r\nDiagnostic-Code: x-petrel; gone.test has a null MX"
            )
        )
        #expect(parts[3].hasPrefix("\r\nContent-Type: text/rfc822-headers\r\n"))
        #expect(parts[3].hasSuffix("Subject: Lunch?\r\n"))
        #expect(parts[4] == "--\r\n")
        // Nothing but CRLF line ends, nothing over 998 octets.
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(text.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
    }

    @Test func aWarningAndAHostileReply() {
        let text = Self.report([
            .init(
                address: "bob@remote.test",
                action: .delayed,
                status: "4.4.1",
                diagnostic: "451 4.4.1 busy\r\n\r\nSubject: injected\r\n" + String(repeating: "x", count: 5000)
            )
        ])
        #expect(text.contains("\r\nSubject: Delayed Mail (still being retried)\r\n"))
        #expect(text.contains("Action: delayed\r\nStatus: 4.4.1\r\n"))
        #expect(!text.contains("\r\nSubject: injected"), "a reply cannot add lines")
        #expect(text.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
    }

    /// A stranger's reply is quoted in octets, not characters: 700 at most, whole UTF-8
    /// sequences, so that "<address>: reply" stays under 998 octets.
    @Test func aQuotedReplyIsCutAtSevenHundredOctets() {
        let cleaned = DeliveryStatusNotification.clean(String(repeating: "é", count: 1000))
        #expect(cleaned.utf8.count == 700)
        #expect(DeliveryStatusNotification.clean("a\r\nb\tc\u{7F}") == "a  b c ")
        let emoji = DeliveryStatusNotification.clean(String(repeating: "😀", count: 300))
        #expect(emoji.utf8.count == 700 && emoji.unicodeScalars.allSatisfy { $0 == "😀" })
    }

    /// A long address (a path can fill most of a command line) leaves less room for the reply.
    @Test func aLongAddressShortensTheQuotedReply() {
        let recipient = DeliveryStatusNotification.Recipient(
            address: String(repeating: "a", count: 480) + "@example.test",
            action: .failed,
            status: "5.1.1",
            remoteMTA: "mx.example.test",
            diagnostic: "550 " + String(repeating: "é", count: 1000),
            lastAttempt: nil
        )
        let report = Self.report([recipient])
        #expect(report.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
        #expect(DeliveryStatusNotification.reportLine(recipient).utf8.count <= 990)
    }

    /// Folding happens at spaces; a word longer than any line is broken between UTF-8 sequences.
    @Test(arguments: [
        "Diagnostic-Code: smtp; 550 " + String(repeating: "é", count: 1500),
        "Diagnostic-Code: smtp; " + String(repeating: "word ", count: 400),
        "Diagnostic-Code: x-petrel; " + String(repeating: "x", count: 5000),
    ])
    func noFoldedLinePassesTheLimit(_ field: String) {
        let folded = DeliveryStatusNotification.fold(field)
        let lines = folded.components(separatedBy: "\r\n").dropLast()
        #expect(lines.allSatisfy { $0.utf8.count <= 900 }, "\(lines.map(\.utf8.count).max() ?? 0)")
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("\t") })
        let unfolded = lines.joined(separator: "\r\n").replacingOccurrences(of: "\r\n\t", with: "")
        #expect(unfolded.filter { $0 != " " } == field.filter { $0 != " " }, "nothing lost")
    }
}
