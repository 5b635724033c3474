import MailAuth
import MailCore
import MailStore
import PetrelConfiguration
import PetrelSystem

/// `petrel sendmail`: a message from standard input, completed as sendmail(1) does (From, Date,
/// Message-ID when missing; Bcc removed) and left in `DATA_DIR/pickup/`, where the server takes
/// it into the queue.
public enum SendmailTool {
    /// Reads the message, completes its header and leaves it in `DATA_DIR/pickup/`. Throws
    /// `ToolExit` 64 (bad arguments), 65 (bad message) or 75 (not stored: try again).
    public static func queue(
        _ configuration: Configuration,
        recipients arguments: [String],
        fromHeaders: Bool,
        sender senderOption: String?,
        fullName: String?
    ) throws {
        let phrase = try Self.displayName(fullName)
        guard let firstDomain = configuration.domains.first else { throw ToolError("no domains configured") }
        var message: [UInt8] = []
        var tooLarge = false
        readStandardInput { chunk in
            if message.count + chunk.count > configuration.limits.messageSize { tooLarge = true }
            if !tooLarge { message += chunk }
        }
        guard !tooLarge else {
            printError("the message is larger than [limits] message_size (\(configuration.limits.messageSize) octets)")
            throw ToolExit(65)
        }
        let (header, bodyStart) = Self.headerSection(message)
        let sender = try Self.envelopeSender(senderOption, firstDomain: firstDomain)
        var recipients = arguments
        if fromHeaders {
            for field in header.fields where field.hasName("To") || field.hasName("Cc") || field.hasName("Bcc") {
                recipients += AddressList.recipients(in: field.value) ?? []
            }
        }
        var addresses: [Mailbox] = []
        for recipient in recipients {
            guard let address = Mailbox(recipient.contains("@") ? recipient : "\(recipient)@\(firstDomain)") else {
                printError("'\(recipient)' is not an email address")
                throw ToolExit(64)
            }
            if !addresses.contains(address) { addresses.append(address) }
        }
        guard !addresses.isEmpty else {
            printError("no recipients: name them as arguments, or use -t to take them from the message")
            throw ToolExit(64)
        }
        let ids = QueueIDGenerator()
        let id = ids.next()
        var seconds = time(nil)
        var local = tm()
        localtime_r(&seconds, &local)
        let now = MessageDate(secondsSince1970: Int64(seconds), utcOffsetSeconds: Int(local.tm_gmtoff))
        var top = "Return-Path: \(sender)\r\n"
        top += "Received: by \(configuration.hostname) (Petrel) with local id \(id)\r\n"
        top += "\tfor <\(addresses.count == 1 ? addresses[0].description : "multiple recipients")>; \(now)\r\n"
        var added = ""
        if header.fields(named: "From").isEmpty {
            added += "From: " + (phrase.isEmpty ? "" : phrase + " ") + "\(sender)\r\n"
        }
        if header.fields(named: "Date").isEmpty { added += "Date: \(now)\r\n" }
        if header.fields(named: "Message-ID").isEmpty { added += "Message-ID: <\(id)@\(configuration.hostname)>\r\n" }
        // Bcc is for the envelope only (RFC 5322 §3.6.3); the other fields stay as written.
        let kept = header.fields.filter { !$0.hasName("Bcc") }.flatMap(\.raw)
        var content = Array((top + added).utf8) + kept
        if bodyStart == 0, message.first != 0x0D { content += [0x0D, 0x0A] }  // body only: end the header
        content += message[bodyStart...]
        let entry = QueueEntry(
            id: id,
            createdAt: now.secondsSince1970,
            sender: sender,
            recipients: addresses,
            smtpUTF8: !sender.isASCII || addresses.contains { !$0.isASCII },
            body: content.contains { $0 >= 0x80 } ? "8BITMIME" : "7BIT",
            authenticatedUser: nil
        )
        do {
            try createDirectories(configuration.dataDirectory)
            try OutboundQueue.drop(message: content, entry: entry, into: configuration.files.pickup)
        } catch {
            printError("cannot queue the message: \(error)")
            throw ToolExit(75)
        }
    }

    /// -F as a display name; a name with a line break (which would add header fields of its
    /// own) is refused.
    static func displayName(_ fullName: String?) throws -> String {
        guard let name = fullName else { return "" }
        do {
            return try DisplayName.encode(name)
        } catch {
            printError("-F: \(error)")
            throw ToolExit(64)
        }
    }

    /// The envelope sender: -f, or the login name at the first domain.
    static func envelopeSender(_ option: String?, firstDomain: String) throws -> ReversePath {
        if let sender = option {
            if sender.isEmpty || sender == "<>" { return .null }
            let address = sender.trimmingCharacters(in: ["<", ">"])
            guard let mailbox = Mailbox(address) else {
                printError("-f '\(sender)' is not an email address")
                throw ToolExit(64)
            }
            return .mailbox(mailbox)
        }
        let login = getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "postmaster"
        guard let mailbox = Mailbox("\(login)@\(firstDomain)") else {
            printError("the login name '\(login)' is no address's local part: name the sender with -f")
            throw ToolExit(64)
        }
        return .mailbox(mailbox)
    }

    /// The header fields, and where what follows them (the empty line and body) starts.
    static func headerSection(_ message: [UInt8]) -> (HeaderSection, Int) {
        var index = 0
        while index < message.count {
            guard let end = message[index...].firstIndex(of: 0x0A) else { break }
            if end == index || (end == index + 1 && message[index] == 0x0D) {
                return (HeaderSection(parsing: message[..<index]), index)
            }
            index = end + 1
        }
        // No empty line: all header, or (a first line that is no field) all body.
        let header = HeaderSection(parsing: message)
        if header.fields.contains(where: { $0.name.isEmpty }) { return (HeaderSection(fields: []), 0) }
        return (header, message.count)
    }
}
