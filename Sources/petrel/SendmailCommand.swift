import ArgumentParser
import MailCore
import MailIntake
import MailStore
import PetrelOperator
import PetrelServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `sendmail` interface that cron, scripts and PHP's mail() expect: a message on standard
/// input, queued for the server to deliver (locally or out, signed like submitted mail).
struct Sendmail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue a message read from standard input, like sendmail(1).",
        discussion: """
            The message goes to DATA_DIR/pickup/, where the server (now, or when it next starts) \
            takes it into the queue. A recipient without a domain gets the first configured \
            domain. From, Date and Message-ID are added when missing. Run it as the user the \
            server runs as. Exit status: 0 when queued, 64 for bad arguments, 65 for a bad \
            message, 75 when the message could not be stored (try again).
            Link it as /usr/sbin/sendmail with a wrapper: exec petrel sendmail --config FILE "$@"
            """
    )

    @OptionGroup var options: ConfigOption
    @Flag(name: .customShort("t"), help: "Also send to the To, Cc and Bcc addresses of the message (Bcc is removed).")
    var fromHeaders = false
    @Option(
        name: .customShort("f"),
        help: ArgumentHelp("The envelope sender (default: your login at the first domain).", valueName: "sender")
    )
    var sender: String?
    @Option(
        name: .customShort("F"),
        help: ArgumentHelp("The sender's full name, for an added From field.", valueName: "name")
    )
    var fullName: String?
    @Flag(name: .customShort("i"), help: "Ignored: a line with a single dot never ends the message here.")
    var ignoreDots = false
    @Flag(name: .customShort("o"), help: .hidden) var legacyOption = false
    @Argument(help: "Recipients.") var recipients: [String] = []

    func run() async throws {
        let configuration = try self.options.load()
        let phrase = try self.displayName()
        guard let firstDomain = configuration.domains.first else { throw CLIError("no domains configured") }
        var message: [UInt8] = []
        var tooLarge = false
        readStandardInput { chunk in
            if message.count + chunk.count > configuration.limits.messageSize { tooLarge = true }
            if !tooLarge { message += chunk }
        }
        guard !tooLarge else {
            printError("the message is larger than [limits] message_size (\(configuration.limits.messageSize) octets)")
            throw ExitCode(65)
        }
        let (header, bodyStart) = Self.headerSection(message)
        let sender = try self.envelopeSender(firstDomain: firstDomain)
        var recipients = self.recipients
        if self.fromHeaders {
            for field in header.fields where field.hasName("To") || field.hasName("Cc") || field.hasName("Bcc") {
                recipients += AddressList.recipients(in: field.value) ?? []
            }
        }
        var addresses: [String] = []
        for recipient in recipients {
            let address = recipient.contains("@") ? recipient : "\(recipient)@\(firstDomain)"
            guard Mailbox(address) != nil else {
                printError("'\(recipient)' is not an email address")
                throw ExitCode(64)
            }
            if !addresses.contains(address) { addresses.append(address) }
        }
        guard !addresses.isEmpty else {
            printError("no recipients: name them as arguments, or use -t to take them from the message")
            throw ExitCode(64)
        }
        let ids = QueueIDGenerator()
        let id = ids.next()
        var seconds = time(nil)
        var local = tm()
        localtime_r(&seconds, &local)
        let now = MessageDate(secondsSince1970: Int64(seconds), utcOffsetSeconds: Int(local.tm_gmtoff))
        var top = "Return-Path: <\(sender)>\r\n"
        top += "Received: by \(configuration.hostname) (Petrel) with local id \(id)\r\n"
        top += "\tfor <\(addresses.count == 1 ? addresses[0] : "multiple recipients")>; \(now)\r\n"
        var added = ""
        if header.fields(named: "From").isEmpty {
            added += "From: " + (phrase.isEmpty ? "" : phrase + " ") + "<\(sender)>\r\n"
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
            smtpUTF8: (addresses + [sender]).contains { $0.utf8.contains { $0 >= 0x80 } },
            body: content.contains { $0 >= 0x80 } ? "8BITMIME" : "7BIT",
            authenticatedUser: nil
        )
        do {
            try createDirectories(configuration.dataDirectory)
            try OutboundQueue.drop(message: content, entry: entry, into: configuration.dataDirectory + "/pickup")
        } catch {
            printError("cannot queue the message: \(error)")
            throw ExitCode(75)
        }
    }

    /// -F as a display name; a name with a line break (which would add header fields of its
    /// own) is refused.
    func displayName() throws -> String {
        guard let name = self.fullName else { return "" }
        do {
            return try DisplayName.encode(name)
        } catch {
            printError("-F: \(error)")
            throw ExitCode(64)
        }
    }

    /// The envelope sender: -f, or the login name at the first domain.
    func envelopeSender(firstDomain: String) throws -> String {
        if let sender = self.sender {
            if sender.isEmpty || sender == "<>" { return "" }
            let address = sender.trimmingCharacters(in: ["<", ">"])
            guard Mailbox(address) != nil else {
                printError("-f '\(sender)' is not an email address")
                throw ExitCode(64)
            }
            return address
        }
        let login = getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "postmaster"
        return "\(login)@\(firstDomain)"
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
