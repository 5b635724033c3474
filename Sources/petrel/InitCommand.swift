import ArgumentParser
import PetrelConfiguration
import PetrelOperator

/// `petrel init`: from nothing to a server that only needs its DNS records.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set up a server for your domains: configuration, data directory, DKIM key, postmaster.",
        discussion: """
            Writes a commented configuration for the production ports (25, 587, 465), creates the \
            data directory, a DKIM key per domain, the postmaster mailbox (its password is printed \
            once) and a self-signed certificate until a real one is configured, then prints the DNS \
            records to publish, as `petrel dns` does. Nothing is overwritten without --force (and \
            even then keys and mail are kept).
            """
    )

    @Option(
        name: .customLong("domain"),
        help: ArgumentHelp("A domain to receive mail for (repeat for more).", valueName: "domain")
    )
    var domains: [String]
    @Option(help: ArgumentHelp("This host's fully qualified name, the MX target.", valueName: "name"))
    var hostname: String
    @Option(
        name: .customLong("ip"),
        help: ArgumentHelp("This host's public IPv4 address (repeatable).", valueName: "address")
    )
    var ipv4: [String] = []
    @Option(
        name: .customLong("ipv6"),
        help: ArgumentHelp("This host's public IPv6 address (repeatable).", valueName: "address")
    )
    var ipv6: [String] = []
    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Where the data goes.", valueName: "dir"))
    var dataDirectory = "/var/lib/petrel"
    @Option(name: .customLong("config"), help: ArgumentHelp("The configuration file to write.", valueName: "file"))
    var configurationPath = "/etc/petrel/petrel.toml"
    @Flag(help: "Replace an existing configuration file and set the postmaster's password again.")
    var force = false

    func validate() throws {
        guard !self.ipv4.isEmpty || !self.ipv6.isEmpty else {
            throw ValidationError("give this host's public address: --ip 203.0.113.7 (and --ipv6 if it has one)")
        }
        try syncTool { _ = try Setup.addresses(ipv4: self.ipv4, ipv6: self.ipv6) }
    }

    func run() throws {
        var setup = Setup(
            domains: self.domains.map { $0.lowercased() },
            hostname: self.hostname.lowercased(),
            addresses: try Setup.addresses(ipv4: self.ipv4, ipv6: self.ipv6),
            dataDirectory: joinPath(currentDirectory(), self.dataDirectory),
            configurationPath: joinPath(currentDirectory(), self.configurationPath)
        )
        setup.force = self.force
        let result: Setup.Result
        do {
            result = try setup.run()
        } catch {
            throw ToolError("\(error)")
        }
        print("wrote \(setup.configurationPath)")
        print("data directory: \(setup.dataDirectory)")
        for key in result.dkimKeys { print("DKIM key: \(key)") }
        print("certificate (self-signed until you set [tls]): \(result.certificate)")
        if let password = result.postmasterPassword {
            print("mailbox \(result.postmaster), password (shown only now): \(password)")
        }
        print("")
        print("Publish these DNS records (`petrel dns --format zone` prints them for a zone file), start the")
        print("server, then check everything with: petrel doctor --config \(setup.configurationPath)")
        print("")
        print(try DNSRecords(configuration: result.configuration).rendered(.table), terminator: "")
        print("")
        print("Start the server with: petrel serve --config \(setup.configurationPath)")
    }
}
