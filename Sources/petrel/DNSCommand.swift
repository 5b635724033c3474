import ArgumentParser
import PetrelOperator

/// `petrel dns`: the records to publish, from the configuration and the DKIM keys on disk.
struct DNSRecordsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Print the DNS records to publish for the configured domains, each with its reason.",
        discussion: """
            A and AAAA of the host name (from `addresses`), MX, SPF, DKIM (every key under \
            DATA_DIR/dkim/), DMARC, TLS-RPT, MTA-STS and its policy file, the SRV records of \
            submission (RFC 6186), and the PTR record to ask your provider for. \
            --format zone pastes into a BIND zone file as it is; json is for scripts.
            """
    )

    @OptionGroup var options: ConfigOption
    @Option(help: "table, zone or json.") var format: DNSRecords.Format = .table

    func run() throws {
        let configuration = try self.options.load()
        let records = try DNSRecords(configuration: configuration)
        print(records.rendered(self.format), terminator: "")
        if configuration.publicAddresses.isEmpty {
            printError(
                "no `addresses` in the configuration: the A, AAAA and PTR records are left out (add addresses = [\"203.0.113.7\"])"
            )
        }
        for domain in configuration.domains where !records.keys.contains(where: { $0.domain == domain }) {
            printError("\(domain) has no DKIM key: make one with `petrel dkim keygen \(domain)`")
        }
    }
}

extension DNSRecords.Format: ExpressibleByArgument {}
