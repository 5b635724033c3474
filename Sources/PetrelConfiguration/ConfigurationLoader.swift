import Foundation
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
        try self.parse(text, source: source, baseDirectory: baseDirectory, hostname: hostname, keysAsked: nil)
    }

    static func parse(
        _ text: String,
        source: String,
        baseDirectory: String,
        hostname: String,
        keysAsked: TableReader.KeysAsked?
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
        var top = TableReader(table: root, path: "", source: source, keysAsked: keysAsked)

        try configuration.readTopLevel(&top, baseDirectory: baseDirectory)
        // Each table is read next to the type it fills; `finish` reports the keys nobody asked for.
        if var table = try top.table("listen") {
            configuration.listen = try .read(&table)
            try table.finish()
        }
        if var table = try top.table("tls") {
            configuration.tls = try .read(&table, baseDirectory: baseDirectory)
            try table.finish()
        }
        if var table = try top.table("limits") {
            try configuration.limits.read(&table)
            try table.finish()
        }
        if var table = try top.table("imap") {
            try configuration.imap.read(&table)
            try table.finish()
        }
        if var table = try top.table("quota") {
            try configuration.quota.read(&table)
            try table.finish()
        }
        if var table = try top.table("timeouts") {
            try configuration.timeouts.read(&table)
            try table.finish()
        }
        if var table = try top.table("auth") {
            try configuration.loginFailures.read(&table)
            // Until 2026-12 the SPF, DKIM and DMARC keys were in [auth] too, with the login
            // limits: still read there, with a warning, before [inbound] has its say.
            for key in Configuration.InboundPolicy.keys where table.contains(key) {
                configuration.deprecations.append("auth.\(key) is now inbound.\(key); the old name will go")
            }
            try configuration.inbound.read(&table)
            try table.finish()
        }
        if var table = try top.table("inbound") {
            try configuration.inbound.read(&table)
            try table.finish()
        }
        if var table = try top.table("dns") {
            try configuration.dns.read(&table)
            try table.finish()
        }
        if var table = try top.table("delivery") {
            try configuration.delivery.read(&table)
            try table.finish()
        }
        if var table = try top.table("relay") {
            configuration.relay = try .read(&table, baseDirectory: baseDirectory)
            try table.finish()
        }
        if var table = try top.table("metrics") {
            try configuration.readMetrics(&table)
            try table.finish()
        }
        if var table = try top.table("log") {
            try configuration.readLog(&table)
            try table.finish()
        }
        try top.finish()
        return configuration
    }
}
