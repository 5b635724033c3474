import ArgumentParser
import PetrelOperator

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
        try await tool {
            try SendmailTool.queue(
                try self.options.load(),
                recipients: self.recipients,
                fromHeaders: self.fromHeaders,
                sender: self.sender,
                fullName: self.fullName
            )
        }
    }
}
