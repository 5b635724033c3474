/// A delivery status notification (RFC 3464 in a RFC 6522 multipart/report): what Petrel sends
/// back to the envelope sender when recipients failed (or, as a warning, are still being
/// retried). Sent from `MAILER-DAEMON` with the null reverse path, so it never bounces back.
public struct DeliveryStatusNotification: Sendable {
    public enum Action: String, Sendable {
        case failed, delayed
    }

    /// One recipient's report (RFC 3464 §2.3).
    public struct Recipient: Sendable {
        public var address: String
        public var action: Action
        /// `5.1.1`, or `4.4.1` for a delay.
        public var status: String
        /// The server that answered, when one did: `mx.remote.test`.
        public var remoteMTA: String?
        /// Its reply (`550 5.1.1 user unknown`), or what went wrong without one.
        public var diagnostic: String
        public var lastAttempt: MessageDate?

        public init(
            address: String,
            action: Action,
            status: String,
            remoteMTA: String? = nil,
            diagnostic: String,
            lastAttempt: MessageDate? = nil
        ) {
            self.address = address
            self.action = action
            self.status = status
            self.remoteMTA = remoteMTA
            self.diagnostic = diagnostic
            self.lastAttempt = lastAttempt
        }
    }

    /// Our host name: the Reporting-MTA and the MAILER-DAEMON's domain.
    public var reportingMTA: String
    /// Where the report goes: the original envelope sender (never empty: no report for `<>`).
    public var sender: String
    public var queueID: String
    public var arrivalDate: MessageDate
    public var date: MessageDate
    public var recipients: [Recipient]
    /// The header section of the returned message (CRLF line ends), as text/rfc822-headers.
    public var originalHeader: [UInt8]
    /// The MIME boundary; random in production, fixed in tests.
    public var boundary: String

    public init(
        reportingMTA: String,
        sender: String,
        queueID: String,
        arrivalDate: MessageDate,
        date: MessageDate,
        recipients: [Recipient],
        originalHeader: [UInt8],
        boundary: String
    ) {
        self.reportingMTA = reportingMTA
        self.sender = sender
        self.queueID = queueID
        self.arrivalDate = arrivalDate
        self.date = date
        self.recipients = recipients
        self.originalHeader = originalHeader
        self.boundary = boundary
    }

    /// Only a failure is final; a report of delays alone is a warning.
    public var isWarning: Bool { self.recipients.allSatisfy { $0.action == .delayed } }

    /// The whole message, CRLF line ends, lines folded under 998 octets.
    public var rendered: [UInt8] {
        var text = ""
        func line(_ value: String) { text += value + "\r\n" }
        let failed = self.recipients.filter { $0.action == .failed }
        let delayed = self.recipients.filter { $0.action == .delayed }
        line("From: Mail Delivery System <MAILER-DAEMON@\(self.reportingMTA)>")
        line("To: <\(self.sender)>")
        line(
            "Subject: "
                + (self.isWarning ? "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender")
        )
        line("Date: \(self.date)")
        line("Message-ID: <\(self.queueID).dsn@\(self.reportingMTA)>")
        line("Auto-Submitted: auto-replied")  // RFC 3834: no automatic answers to this
        line("MIME-Version: 1.0")
        line("Content-Type: multipart/report; report-type=delivery-status;")
        line("\tboundary=\"\(self.boundary)\"")
        line("")
        line("This is a MIME-encapsulated message.")
        line("")
        line("--\(self.boundary)")
        line("Content-Type: text/plain; charset=utf-8")
        line("Content-Description: Notification")
        line("Content-Transfer-Encoding: 8bit")
        line("")
        line("This is the mail system at \(self.reportingMTA).")
        line("")
        if !failed.isEmpty {
            line("Your message could not be delivered to the following recipients. It has been")
            line("returned below (its header only); the reason each server gave is included.")
            line("")
            for recipient in failed { line(Self.reportLine(recipient)) }
            line("")
        }
        if !delayed.isEmpty {
            line("Your message has not been delivered yet to the following recipients. Delivery")
            line("will be tried again; you do not need to send it again.")
            line("")
            for recipient in delayed { line(Self.reportLine(recipient)) }
            line("")
        }
        line("--\(self.boundary)")
        line("Content-Type: message/delivery-status")
        line("Content-Description: Delivery report")
        line("")
        line("Reporting-MTA: dns; \(self.reportingMTA)")
        line("X-Petrel-Queue-ID: \(self.queueID)")
        line("Arrival-Date: \(self.arrivalDate)")
        for recipient in self.recipients {
            line("")
            line("Final-Recipient: rfc822; \(recipient.address)")
            line("Action: \(recipient.action.rawValue)")
            line("Status: \(recipient.status)")
            if let remote = recipient.remoteMTA {
                line("Remote-MTA: dns; \(remote)")
                text += Self.fold("Diagnostic-Code: smtp; " + Self.clean(recipient.diagnostic))
            } else {
                text += Self.fold("Diagnostic-Code: x-petrel; " + Self.clean(recipient.diagnostic))
            }
            if let last = recipient.lastAttempt { line("Last-Attempt-Date: \(last)") }
        }
        line("")
        line("--\(self.boundary)")
        line("Content-Type: text/rfc822-headers")
        line("Content-Description: Undelivered message header")
        line("")
        var bytes = Array(text.utf8)
        bytes += self.originalHeader
        if let last = self.originalHeader.last, last != 0x0A { bytes += [0x0D, 0x0A] }
        bytes += Array("\r\n--\(self.boundary)--\r\n".utf8)
        return bytes
    }

    /// "<address>: what the server said", within 998 octets (RFC 5322 §2.1.1) whatever the
    /// length of the address (a path may fill most of a 512-octet command line).
    static func reportLine(_ recipient: Recipient) -> String {
        let prefix = "<\(recipient.address)>: "
        return prefix + Self.clean(recipient.diagnostic, limit: max(80, 990 - prefix.utf8.count))
    }

    /// One line of text from a stranger's reply: no line ends, no control characters, and at
    /// most `limit` octets (whole UTF-8 sequences), so that a report line quoting it stays under
    /// 998 octets (RFC 5322 §2.1.1).
    static func clean(_ text: String, limit: Int = 700) -> String {
        var output = String.UnicodeScalarView()
        var octets = 0
        for scalar in text.unicodeScalars {
            octets += UTF8.width(scalar)
            guard octets <= limit else { break }
            output.append(scalar.value < 0x20 || scalar.value == 0x7F ? " " : scalar)
        }
        return String(output)
    }

    /// A header field folded at spaces so that no line passes 78 octets where it can be helped;
    /// a word too long for any line (a stranger's reply need not have spaces) is broken between
    /// UTF-8 sequences so that no line passes `hardLimit` octets.
    static func fold(_ field: String, hardLimit: Int = 900) -> String {
        var output = ""
        var line = ""
        for word in field.split(separator: " ", omittingEmptySubsequences: false) {
            var word = Substring(word)
            if !line.isEmpty, line.utf8.count + 1 + word.utf8.count > 78 {
                output += line + "\r\n"
                line = "\t"
            } else if !line.isEmpty {
                line += " "
            }
            while line.utf8.count + word.utf8.count > hardLimit {
                var piece = String.UnicodeScalarView()
                var octets = line.utf8.count
                var rest = word.unicodeScalars[...]
                while let scalar = rest.first, octets + UTF8.width(scalar) <= hardLimit {
                    piece.append(scalar)
                    octets += UTF8.width(scalar)
                    rest = rest.dropFirst()
                }
                output += line + String(piece) + "\r\n"
                line = "\t"
                word = Substring(String(rest))
            }
            line += word
        }
        return output + line + "\r\n"
    }
}
