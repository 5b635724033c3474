import ArgumentParser
import PetrelOperator

/// `petrel doctor`: is DNS (and the rest) as `petrel dns` says it should be?
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the published DNS records, the certificate and the listeners.",
        discussion: """
            Looks up every record `petrel dns` prints through Petrel's resolver and reports each \
            as ok, missing or wrong, with what it found and what it expected: SPF is evaluated for \
            the configured addresses with Petrel's SPF code, the DKIM record's key is compared with \
            the private key on disk, the DMARC record must parse, the MX hosts must lead to this \
            host, and its addresses' PTR records must name it and be confirmed forward. Then the \
            certificate (names the host, current, not self-signed when port 25 is served) and each \
            listener (accepts a connection). Exit status 0 only when nothing is missing or wrong.
            """
    )

    @OptionGroup var options: ConfigOption
    @Option(
        name: .customLong("dns"),
        help: ArgumentHelp("Ask this DNS server instead of the configured ones.", valueName: "host:port")
    )
    var server: String?

    func run() async throws {
        try await tool {
            let configuration = try self.options.load()
            let records = try DNSRecords(configuration: configuration)
            let resolver = try ResolveTool.resolver(configuration, server: self.server, option: "--dns")
            let findings = await SetupDoctor(configuration: configuration, records: records, resolver: resolver).run()
            for finding in findings {
                var line = finding.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + finding.subject
                if !finding.found.isEmpty { line += "\n        found:    \(finding.found)" }
                if finding.status != .ok, !finding.expected.isEmpty {
                    line += "\n        expected: \(finding.expected)"
                }
                print(line)
            }
            let missing = findings.filter { $0.status == .missing }.count
            let wrong = findings.filter { $0.status == .wrong }.count
            print("\(findings.count - missing - wrong) ok, \(missing) missing, \(wrong) wrong")
            if configuration.publicAddresses.isEmpty {
                printError("no `addresses` in the configuration: A, AAAA, SPF and PTR cannot be checked")
            }
            if missing + wrong > 0 { throw ExitCode(1) }
        }
    }
}
