import Accounts
import Foundation
import Logging
import MailCore
import NIOCore
import TOMLKit

/// A configuration problem, naming the file and the key, and saying what is expected.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var source: String
    /// Dotted key (`limits.message_size`), nil for file-level problems.
    public var key: String?
    public var message: String

    public var description: String {
        if let key { return "\(self.source): \(key): \(self.message)" }
        return "\(self.source): \(self.message)"
    }
}

/// Reads Petrel's TOML configuration strictly: an unknown key, a wrong type or a bad value stops
/// start-up with an error that names the key, since a silently ignored typo in a mail server's
/// configuration (say, `conections_per_ip`) is a limit that does not exist.
public enum ConfigurationLoader {
    public static func load(path: String, hostname: String) throws(ConfigurationError) -> Configuration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError(
                source: path,
                key: nil,
                message: "cannot read the configuration file (\(error.localizedDescription))"
            )
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            let line =
                1
                + (String(decoding: data, as: UTF8.self).split(separator: "\u{FFFD}").first?.count { $0 == "\n" } ?? 0)
            throw ConfigurationError(
                source: path,
                key: nil,
                message: "line \(line): not UTF-8 text (TOML files are UTF-8)"
            )
        }
        let absolute = joinPath(FileManager.default.currentDirectoryPath, path)
        let directory = absolute.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(
            separator: "/"
        )
        return try self.parse(
            text,
            source: path,
            baseDirectory: directory.isEmpty ? "/" : directory,
            hostname: hostname
        )
    }

    /// - Parameters:
    ///   - baseDirectory: relative `data_dir` values are taken relative to this (the file's directory).
    ///   - hostname: the default for `hostname`.
    public static func parse(
        _ text: String,
        source: String,
        baseDirectory: String,
        hostname: String
    )
        throws(ConfigurationError) -> Configuration
    {
        let root: TOMLTable
        do {
            if let (line, column, problem) = TOMLPreCheck.firstProblem(in: text) {
                throw ConfigurationError(
                    source: source,
                    key: nil,
                    message: "line \(line), column \(column): \(problem)"
                )
            }
            root = try TOMLTable(string: text)
        } catch let error as ConfigurationError {
            throw error
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                source: source,
                key: nil,
                message: "line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)"
            )
        } catch {
            throw ConfigurationError(source: source, key: nil, message: "not valid TOML: \(error)")
        }
        var configuration = Configuration.defaults(hostname: hostname, workingDirectory: baseDirectory)
        var top = TableReader(table: root, path: "", source: source)

        if let name = try top.string("hostname") {
            guard Domain(name) != nil else {
                throw top.error(
                    "hostname",
                    "'\(name)' is not a valid host name; use a fully qualified name like mx.example.com"
                )
            }
            configuration.hostname = name
        }
        if let directory = try top.string("data_dir") {
            guard !directory.isEmpty else { throw top.error("data_dir", "must not be empty") }
            configuration.dataDirectory = joinPath(baseDirectory, directory)
        }
        if let domains = try top.stringArray("domains") {
            guard !domains.isEmpty else { throw top.error("domains", "name at least one domain to receive mail for") }
            var canonical: [String] = []
            for name in domains {
                guard let domain = Domain(name), domain.isASCII else {
                    throw top.error("domains", "'\(name)' is not a valid domain name")
                }
                if !canonical.contains(domain.canonical) { canonical.append(domain.canonical) }
            }
            configuration.domains = canonical
        }
        if let postmaster = try top.string("postmaster") {
            let address: AccountAddress
            do {
                address = try AccountAddress(validating: postmaster)
            } catch {
                throw top.error("postmaster", "\(error)")
            }
            guard configuration.domains.contains(address.domain) else {
                throw top.error(
                    "postmaster",
                    "\(address) is not in one of the domains (\(configuration.domains.joined(separator: ", ")))"
                )
            }
            configuration.postmaster = address
        }
        if let addresses = try top.stringArray("addresses") {
            var parsed: [IPAddress] = []
            for text in addresses {
                guard let address = IPAddress(text) else {
                    throw top.error("addresses", "'\(text)' is not an IPv4 or IPv6 address")
                }
                if !parsed.contains(address) { parsed.append(address) }
            }
            configuration.publicAddresses = parsed
        }
        if let delimiter = try top.string("recipient_delimiter") {
            switch delimiter.count {
            case 0:
                configuration.recipientDelimiter = nil
            case 1 where "+-_=~#".contains(delimiter):
                configuration.recipientDelimiter = delimiter.first
            default:
                throw top.error("recipient_delimiter", "must be one of + - _ = ~ #, or \"\" to turn subaddressing off")
            }
        }

        if var listen = try top.table("listen") {
            // A [listen] table replaces the default listeners: only the kinds it names listen.
            configuration.listen = Configuration.Listen(
                smtp: try listen.listenAddresses("smtp"),
                submission: try listen.listenAddresses("submission"),
                submissions: try listen.listenAddresses("submissions")
            )
            let all = configuration.listen.smtp + configuration.listen.submission + configuration.listen.submissions
            guard !all.isEmpty else { throw top.error("listen", "name at least one of smtp, submission, submissions") }
            try listen.finish()
        }

        if var tls = try top.table("tls") {
            guard let certificate = try tls.string("certificate"), let key = try tls.string("key") else {
                throw top.error("tls", "needs both certificate and key (PEM files)")
            }
            configuration.tls = Configuration.TLSFiles(
                certificate: joinPath(baseDirectory, certificate),
                key: joinPath(baseDirectory, key)
            )
            try tls.finish()
        }

        if var limits = try top.table("limits") {
            if let value = try limits.int("message_size", in: 1024...(1 << 40)) {
                configuration.limits.messageSize = value
            }
            if let value = try limits.int("recipients", in: 1...100_000) { configuration.limits.recipients = value }
            if let value = try limits.int("connections", in: 1...1_000_000) { configuration.limits.connections = value }
            if let value = try limits.int("connections_per_ip", in: 1...1_000_000) {
                configuration.limits.connectionsPerIP = value
            }
            if let value = try limits.int("errors", in: 1...10_000) { configuration.limits.errors = value }
            try limits.finish()
        }

        if var timeouts = try top.table("timeouts") {
            if let value = try timeouts.int("command", in: 1...86_400) { configuration.timeouts.command = value }
            if let value = try timeouts.int("data", in: 1...86_400) { configuration.timeouts.data = value }
            if let value = try timeouts.int("data_total", in: 1...86_400) { configuration.timeouts.dataTotal = value }
            if let value = try timeouts.int("tls_handshake", in: 1...3_600) {
                configuration.timeouts.tlsHandshake = value
            }
            if let value = try timeouts.int("shutdown", in: 0...3_600) { configuration.timeouts.shutdown = value }
            try timeouts.finish()
        }

        if var auth = try top.table("auth") {
            if let value = try auth.int("failures", in: 1...1000) { configuration.authentication.failures = value }
            if let value = try auth.int("failure_window", in: 1...86_400) {
                configuration.authentication.window = value
            }
            if let value = try auth.int("block", in: 0...86_400) { configuration.authentication.block = value }
            if let value = try auth.int("account_delay_max", in: 1...3_600) {
                configuration.authentication.accountDelayMax = value
            }
            var mail = configuration.mailAuthentication
            if let value = try auth.bool("verify") { mail.verify = value }
            if let value = try auth.choice("dmarc_reject", ["reject", "quarantine", "none"]) {
                mail.dmarcReject = .init(rawValue: value)!
            }
            if let value = try auth.choice("dmarc_quarantine", ["quarantine", "none"]) {
                mail.dmarcQuarantine = .init(rawValue: value)!
            }
            if let value = try auth.choice("dmarc_temperror", ["defer", "accept"]) {
                mail.deferOnDMARCTemperror = value == "defer"
            }
            if let value = try auth.choice("spf_fail", ["reject", "accept"]) { mail.rejectSPFFail = value == "reject" }
            if let value = try auth.string("junk_folder") {
                guard value.hasPrefix("."), value.count > 1, !value.contains("/"), value != ".." else {
                    throw auth.error(
                        "junk_folder",
                        "'\(value)' is not a Maildir++ folder name (one starting with a dot, like \".Junk\")"
                    )
                }
                mail.junkFolder = value
            }
            if let value = try auth.int("time_limit", in: 1...300) { mail.timeLimit = value }
            configuration.mailAuthentication = mail
            try auth.finish()
        }

        if var dns = try top.table("dns") {
            if try dns.stringArray("servers") != nil {
                let servers = try dns.listenAddresses("servers", defaultPort: 53)
                guard !servers.isEmpty else {
                    throw dns.error("servers", "name at least one server, or leave the key out for /etc/resolv.conf")
                }
                for server in servers where (try? SocketAddress(ipAddress: server.host, port: server.port)) == nil {
                    throw dns.error("servers", "'\(server.host)' is not an IP address; resolvers are named by address")
                }
                configuration.dns.servers = servers
            }
            if let value = try dns.int("timeout", in: 1...60) { configuration.dns.timeout = value }
            if let value = try dns.int("attempts", in: 1...10) { configuration.dns.attempts = value }
            try dns.finish()
        }

        if var delivery = try top.table("delivery") {
            var policy = configuration.delivery
            if let value = try delivery.int("retry_first", in: 1...86_400) { policy.retryFirst = value }
            if let value = try delivery.int("retry_max", in: 1...604_800) { policy.retryMaximum = value }
            if let value = try delivery.int("max_age", in: 60...(60 * 86_400)) { policy.maximumAge = value }
            if let value = try delivery.int("delay_notice", in: 0...(60 * 86_400)) {
                policy.delayNotice = value == 0 ? nil : value
            }
            if let value = try delivery.int("connections", in: 1...10_000) { policy.connections = value }
            if let value = try delivery.int("connections_per_domain", in: 1...1_000) {
                policy.connectionsPerDomain = value
            }
            if let value = try delivery.int("reply_timeout", in: 1...3_600) { policy.replyTimeout = value }
            if let value = try delivery.bool("hold") { policy.hold = value }
            guard policy.retryMaximum >= policy.retryFirst else {
                throw delivery.error("retry_max", "must be at least retry_first (\(policy.retryFirst))")
            }
            configuration.delivery = policy
            try delivery.finish()
        }

        if var relay = try top.table("relay") {
            guard let host = try relay.string("host") else {
                throw relay.error("host", "is required in [relay]: host = \"smtp.provider.example:587\"")
            }
            guard let address = ListenAddress(parsing: host), address.port > 0 else {
                throw relay.error("host", "'\(host)' is not host:port (smtp.provider.example:587)")
            }
            var settings = Configuration.Relay(host: address.host, port: address.port)
            settings.username = try relay.string("username")
            settings.password = try relay.string("password")
            guard (settings.username == nil) == (settings.password == nil) else {
                throw relay.error(
                    settings.username == nil ? "username" : "password",
                    "username and password go together"
                )
            }
            if let file = try relay.string("ca_file") {
                settings.caFile = joinPath(baseDirectory, file)
            }
            configuration.relay = settings
            try relay.finish()
        }

        if var metrics = try top.table("metrics") {
            if let text = try metrics.string("listen") {
                guard let address = ListenAddress(parsing: text) else {
                    throw metrics.error("listen", "'\(text)' is not address:port (127.0.0.1:9464)")
                }
                configuration.metricsListen = address
            }
            try metrics.finish()
        }

        if var log = try top.table("log") {
            if let level = try log.string("level") {
                guard let parsed = Logger.Level(rawValue: level) else {
                    let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                    throw log.error("level", "'\(level)' is not a log level (\(names))")
                }
                configuration.logLevel = parsed
            }
            if let format = try log.choice("format", LogfmtHandler.Format.allCases.map(\.rawValue)) {
                configuration.logFormat = LogfmtHandler.Format(rawValue: format)!
            }
            try log.finish()
        }

        try top.finish()
        return configuration
    }
}

/// Reads typed values from one TOML table and remembers which keys were read, so that the rest
/// can be reported as unknown.
private struct TableReader {
    let table: TOMLTable
    /// "" for the top level, "limits." for [limits].
    let path: String
    let source: String
    private var known: [String] = []

    init(table: TOMLTable, path: String, source: String) {
        self.table = table
        self.path = path
        self.source = source
    }

    func error(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(source: self.source, key: self.path + key, message: message)
    }

    private mutating func value(_ key: String) -> TOMLValueConvertible? {
        self.known.append(key)
        return self.table[key]
    }

    private func typeError(_ key: String, expected: String, got value: TOMLValueConvertible) -> ConfigurationError {
        self.error(key, "must be \(expected), not \(value.type.description)")
    }

    mutating func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = self.value(key) else { return nil }
        guard let string = value.string else { throw self.typeError(key, expected: "a string", got: value) }
        return string
    }

    mutating func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = self.value(key) else { return nil }
        guard let bool = value.bool else { throw self.typeError(key, expected: "true or false", got: value) }
        return bool
    }

    /// A string that must be one of `choices`.
    mutating func choice(_ key: String, _ choices: [String]) throws(ConfigurationError) -> String? {
        guard let text = try self.string(key) else { return nil }
        guard choices.contains(text) else {
            throw self.error(key, "'\(text)' is not one of " + choices.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        return text
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = self.value(key) else { return nil }
        guard let number = value.int else { throw self.typeError(key, expected: "an integer", got: value) }
        guard range.contains(number) else {
            throw self.error(key, "must be between \(range.lowerBound) and \(range.upperBound), not \(number)")
        }
        return number
    }

    mutating func stringArray(_ key: String) throws(ConfigurationError) -> [String]? {
        guard let value = self.value(key) else { return nil }
        guard let array = value.array else { throw self.typeError(key, expected: "an array of strings", got: value) }
        var result: [String] = []
        for element in array {
            guard let string = element.string else {
                throw self.typeError(key, expected: "an array of strings", got: element)
            }
            result.append(string)
        }
        return result
    }

    /// An array of `address:port` strings; an absent key is an empty list. With a default port,
    /// a bare address is accepted too.
    mutating func listenAddresses(_ key: String, defaultPort: Int? = nil) throws(ConfigurationError) -> [ListenAddress]
    {
        var parsed: [ListenAddress] = []
        for text in try self.stringArray(key) ?? [] {
            let address =
                if let defaultPort { ListenAddress(parsing: text, defaultPort: defaultPort) } else {
                    ListenAddress(parsing: text)
                }
            guard let address else {
                throw self.error(key, "'\(text)' is not address:port (use 127.0.0.1:25, [::1]:25 or 0.0.0.0:25)")
            }
            parsed.append(address)
        }
        return parsed
    }

    mutating func table(_ key: String) throws(ConfigurationError) -> TableReader? {
        guard let value = self.value(key) else { return nil }
        guard let table = value.table else { throw self.typeError(key, expected: "a table ([\(key)])", got: value) }
        return TableReader(table: table, path: self.path + key + ".", source: self.source)
    }

    /// Fails on the first key that was never asked for, suggesting the closest known one.
    func finish() throws(ConfigurationError) {
        for key in self.table.keys.sorted() where !self.known.contains(key) {
            var message = "unknown key"
            if let suggestion = self.known.min(by: { editDistance($0, key) < editDistance($1, key) }),
                editDistance(suggestion, key) <= 3
            {
                message += "; did you mean '\(self.path)\(suggestion)'?"
            }
            throw self.error(key, message)
        }
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}

/// Finds the mistakes toml++ 3 (under TOMLKit) asserts on instead of reporting, which would end
/// `petrel` with SIGABRT; the fuzz target for the loader found them: a table name that starts
/// with a character no key can start with (`[=x]`, `[é]`), and a closing bracket of the wrong
/// kind in a value (`[}`). A small lexer, so that brackets inside strings and comments are left
/// alone.
enum TOMLPreCheck {
    static let badTableName = "a table name must be a bare key (letters, digits, '-', '_') or a quoted string"

    static func firstProblem(in text: String) -> (line: Int, column: Int, problem: String)? {
        let scalars = Array(text.unicodeScalars)
        var line = 1
        var lineStart = 0
        var index = 0
        var open: [Unicode.Scalar] = []  // brackets and braces open in a value
        var atLineStart = true  // only white space so far on this line, outside any value

        func starts(_ prefix: String, at position: Int) -> Bool {
            let prefix = Array(prefix.unicodeScalars)
            return position + prefix.count <= scalars.count
                && Array(scalars[position..<position + prefix.count]) == prefix
        }
        /// Moves past a string that starts at `index`, counting its line breaks.
        func skipString() {
            let quote = scalars[index]
            let multiLine = starts(String(repeating: String(quote), count: 3), at: index)
            let closing = multiLine ? String(repeating: String(quote), count: 3) : String(quote)
            index += multiLine ? 3 : 1
            while index < scalars.count {
                if quote == "\"" && scalars[index] == "\\" {
                    index += 2
                    continue
                }
                if starts(closing, at: index) {
                    index += closing.unicodeScalars.count
                    // A multi-line string may end with up to two more quotes inside it.
                    while multiLine && index < scalars.count && scalars[index] == quote { index += 1 }
                    return
                }
                if scalars[index] == "\n" {
                    if !multiLine { return }
                    line += 1
                    lineStart = index + 1
                }
                index += 1
            }
        }

        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\n":
                line += 1
                lineStart = index + 1
                atLineStart = open.isEmpty
                index += 1
            case " ", "\t", "\r":
                index += 1
            case "#":
                while index < scalars.count && scalars[index] != "\n" { index += 1 }
            case "\"", "'":
                atLineStart = false
                skipString()
            case "[" where atLineStart:
                atLineStart = false
                index += 1
                if index < scalars.count && scalars[index] == "[" { index += 1 }
                while index < scalars.count && (scalars[index] == " " || scalars[index] == "\t") { index += 1 }
                guard index < scalars.count else { return nil }
                let first = scalars[index]
                let bare =
                    first.isASCII
                    && (first.properties.isAlphabetic || ("0"..."9").contains(first) || first == "-" || first == "_")
                if !bare && first != "\"" && first != "'" && first != "]" {
                    return (line, index - lineStart + 1, Self.badTableName)
                }
            case "[", "{":
                atLineStart = false
                open.append(scalar)
                index += 1
            case "]", "}":
                if let last = open.popLast(), (last == "[") != (scalar == "]") {
                    let what = last == "[" ? "an array" : "an inline table"
                    return (line, index - lineStart + 1, "'\(scalar)' does not close \(what)")
                }
                index += 1
            default:
                atLineStart = false
                index += 1
            }
        }
        return nil
    }
}
