import DNSCore
import Foundation
import MailAuth
import MailCore
import MailStore
import NIOCore
import NIOPosix
import PetrelConfiguration
import X509

/// `petrel doctor`: looks up every record `petrel dns` asks for, through Petrel's resolver, and
/// says per record whether it is `ok`, `missing` or `wrong`, with what it found and what it
/// expected; then the certificate and the listeners.
public struct SetupDoctor: Sendable {
    public enum Status: String, Sendable {
        case ok, missing, wrong
    }

    public struct Finding: Sendable, Hashable {
        public var status: Status
        /// `MX example.com`, `certificate`, `listener smtp 0.0.0.0:25`.
        public var subject: String
        public var found: String
        public var expected: String

        init(_ status: Status, _ subject: String, found: String = "", expected: String = "") {
            self.status = status
            self.subject = subject
            self.found = found
            self.expected = expected
        }
    }

    let configuration: Configuration
    let records: DNSRecords
    let resolver: any DNSResolving

    public init(configuration: Configuration, records: DNSRecords, resolver: any DNSResolving) {
        self.configuration = configuration
        self.records = records
        self.resolver = resolver
    }

    /// Every check, DNS first.
    public func run(now: Date = Date()) async -> [Finding] {
        var findings: [Finding] = []
        for record in self.records.records {
            findings.append(await self.check(record))
        }
        findings += await self.checkMXHostsAreOurs()
        findings.append(self.checkCertificate(now: now))
        findings += Self.checkPermissions(self.configuration)
        findings += await self.checkListeners()
        return findings
    }

    // MARK: - Permissions

    /// The data directory and the files in it that hold secrets (password hashes and SCRAM keys,
    /// private keys) must not be open to other local users. Petrel makes them so (umask 077,
    /// mode 0600), but a directory made by hand, or restored from a backup, may not be. A
    /// certificate key the operator configured is often shared with a group on purpose (Debian's
    /// ssl-cert, mode 0640): only a key every local user can read is reported.
    public static func checkPermissions(_ configuration: Configuration) -> [Finding] {
        // Each path with the mode bits that must be clear.
        var paths: [(path: String, mask: mode_t)] = [
            (configuration.dataDirectory, 0o077), (configuration.files.accounts, 0o077),
            (configuration.files.accounts + "-wal", 0o077), (configuration.files.accounts + "-shm", 0o077),
        ]
        if let configured = configuration.tls {
            paths.append((configured.key, 0o007))
        } else {
            paths.append((configuration.files.selfSignedKey, 0o077))
        }
        let dkim = configuration.files.dkim
        for domain in (try? FileManager.default.contentsOfDirectory(atPath: dkim))?.sorted() ?? [] {
            paths.append((dkim + "/" + domain, 0o077))
            for key in (try? FileManager.default.contentsOfDirectory(atPath: dkim + "/" + domain))?.sorted() ?? [] {
                paths.append((dkim + "/" + domain + "/" + key, 0o077))
            }
        }
        var findings: [Finding] = []
        for (path, mask) in paths {
            var status = stat()
            guard stat(path, &status) == 0 else { continue }
            let mode = status.st_mode & 0o777
            let subject = "permissions \(path)"
            let text = "mode 0" + String(mode, radix: 8)
            guard mode & mask != 0 else {
                findings.append(Finding(.ok, subject, found: text))
                continue
            }
            let directory = (status.st_mode & S_IFMT) == S_IFDIR
            let fix = mask == 0o007 ? "chmod o-rwx \(path)" : "chmod \(directory ? "700" : "600") \(path)"
            let holds =
                path == configuration.dataDirectory ? "password hashes, private keys and mail" : "secrets"
            findings.append(
                Finding(
                    .wrong,
                    subject,
                    found: text + (mask == 0o007 ? ": readable by every local user" : ": open to other local users"),
                    expected: "\(mask == 0o007 ? "not world-readable" : "owner only"): \(fix) (it holds \(holds))"
                )
            )
        }
        return findings
    }

    // MARK: - DNS

    func check(_ record: DNSRecords.Record) async -> Finding {
        let subject = "\(record.kind.rawValue) \(record.name)"
        guard let name = DNSName(record.name) else { return Finding(.wrong, subject, found: "not a DNS name") }
        switch record.kind {
        case .a, .aaaa:
            let result = await self.resolver.lookup(name, record.kind == .a ? .a : .aaaa)
            let found = result.records.compactMap { record -> String? in
                switch record.data {
                case .a(let octets), .aaaa(let octets): return IPAddress(octets: octets)?.description
                default: return nil
                }
            }
            return Self.verdict(subject, result, found: found, expected: record.value) {
                found.contains { IPAddress($0) == IPAddress(record.value) }
            }
        case .mx:
            let result = await self.resolver.lookup(name, .mx)
            let found = result.records.compactMap { record -> String? in
                if case .mx(let preference, let exchange) = record.data {
                    return "\(preference) \(Self.text(exchange))"
                }
                return nil
            }
            return Self.verdict(subject, result, found: found, expected: record.value) {
                found.contains { $0.split(separator: " ").last.map(String.init) == self.records.hostname }
            }
        case .srv:
            let result = await self.resolver.lookup(name, .srv)
            let found = result.records.compactMap { record -> String? in
                if case .srv(let priority, let weight, let port, let target) = record.data {
                    return "\(priority) \(weight) \(port) \(Self.text(target))"
                }
                return nil
            }
            let expectedPort = record.value.split(separator: " ").dropFirst(2).first.map(String.init)
            return Self.verdict(subject, result, found: found, expected: record.value) {
                found.contains {
                    let parts = $0.split(separator: " ").map(String.init)
                    return parts.count == 4 && parts[2] == expectedPort && parts[3] == self.records.hostname
                }
            }
        case .ptr:
            return await self.checkReverse(record, name: name)
        case .txt:
            return await self.checkTXT(record, name: name)
        }
    }

    /// TXT records are told apart by their version tag; each kind has its own test of "right".
    func checkTXT(_ record: DNSRecords.Record, name: DNSName) async -> Finding {
        let subject = "TXT \(record.name)"
        let result = await self.resolver.lookup(name, .txt)
        let prefix = record.txtPrefix ?? ""
        let all = result.records.compactMap { $0.text.map { String(decoding: $0, as: UTF8.self) } }
        let found = all.filter { $0.lowercased().hasPrefix(prefix.lowercased()) }
        if case .failure(let failure) = result.status {
            return Finding(.wrong, subject, found: "lookup failed: \(failure)", expected: record.value)
        }
        guard !found.isEmpty else {
            return Finding(
                .missing,
                subject,
                found: all.isEmpty ? "" : all.joined(separator: " | "),
                expected: record.value
            )
        }
        guard found.count == 1 else {
            return Finding(
                .wrong,
                subject,
                found: "\(found.count) records: " + found.joined(separator: " | "),
                expected: "one"
            )
        }
        let text = found[0]
        switch prefix {
        case "v=spf1":
            // Evaluated with Petrel's own SPF code, for each address this host sends from.
            let spf = SPFVerifier(resolver: self.resolver, receivingHost: self.records.hostname)
            for address in self.records.addresses {
                let verdict =
                    record.name == self.records.hostname
                    ? await spf.checkHELO(ip: address, helo: record.name)
                    : await spf.check(ip: address, mailFrom: "postmaster@\(record.name)", helo: self.records.hostname)
                guard verdict.result == .pass else {
                    return Finding(
                        .wrong,
                        subject,
                        found: "\(text) (SPF gives \(verdict.result.rawValue) for \(address): \(verdict.reason))",
                        expected: "\(record.value) (pass for \(address))"
                    )
                }
            }
            return Finding(.ok, subject, found: text)
        case "v=DKIM1":
            let ours = Self.tag("p", in: record.value)
            return Finding(
                ours != nil && Self.tag("p", in: text) == ours ? .ok : .wrong,
                subject,
                found: text,
                expected: record.value
            )
        case "v=DMARC1":
            guard let parsed = DMARCRecord(Array(text.utf8)), parsed.policy != nil else {
                return Finding(.wrong, subject, found: "\(text) (does not parse as DMARC)", expected: record.value)
            }
            return Finding(.ok, subject, found: text)
        default:
            return Finding(.ok, subject, found: text)
        }
    }

    /// Forward-confirmed reverse DNS: the address's PTR names our host, and the host name has
    /// the address.
    func checkReverse(_ record: DNSRecords.Record, name: DNSName) async -> Finding {
        let subject = "PTR \(record.name)"
        let result = await self.resolver.lookup(name, .ptr)
        let found = result.records.compactMap { record -> String? in
            if case .name(let target) = record.data { return Self.text(target) }
            return nil
        }
        let address = self.records.addresses.first { DNSName.reverse(address: $0.octets) == name }
        var expected = record.value + " (ask the owner of the address to set it)"
        guard found.contains(self.records.hostname), let address, let host = DNSName(self.records.hostname) else {
            return Self.verdict(subject, result, found: found, expected: expected) { false }
        }
        let forward = await self.resolver.lookup(host, address.isIPv4 ? .a : .aaaa)
        let confirmed = forward.records.contains {
            switch $0.data {
            case .a(let octets), .aaaa(let octets): return IPAddress(octets: octets) == address
            default: return false
            }
        }
        expected = "\(record.value), whose address is \(address)"
        return Finding(confirmed ? .ok : .wrong, subject, found: found.joined(separator: " "), expected: expected)
    }

    /// Every MX host of our domains must lead here.
    func checkMXHostsAreOurs() async -> [Finding] {
        var findings: [Finding] = []
        for domain in self.records.domains {
            guard let name = DNSName(domain) else { continue }
            for record in await self.resolver.lookup(name, .mx).records {
                guard case .mx(_, let exchange) = record.data, Self.text(exchange) != self.records.hostname else {
                    continue
                }
                var addresses: [IPAddress] = []
                for type in [DNSRecordType.a, .aaaa] {
                    for answer in await self.resolver.lookup(exchange, type).records {
                        if case .a(let octets) = answer.data, let address = IPAddress(octets: octets) {
                            addresses.append(address)
                        }
                        if case .aaaa(let octets) = answer.data, let address = IPAddress(octets: octets) {
                            addresses.append(address)
                        }
                    }
                }
                let ours = !addresses.isEmpty && addresses.allSatisfy(self.records.addresses.contains)
                findings.append(
                    Finding(
                        ours ? .ok : .wrong,
                        "MX host \(Self.text(exchange)) of \(domain)",
                        found: addresses.map(\.description).joined(separator: " "),
                        expected:
                            "this host's addresses (\(self.records.addresses.map(\.description).joined(separator: " ")))"
                    )
                )
            }
        }
        return findings
    }

    static func verdict(
        _ subject: String,
        _ result: DNSLookupResult,
        found: [String],
        expected: String,
        matches: () -> Bool
    ) -> Finding {
        if case .failure(let failure) = result.status {
            return Finding(.wrong, subject, found: "lookup failed: \(failure)", expected: expected)
        }
        if found.isEmpty { return Finding(.missing, subject, expected: expected) }
        return Finding(matches() ? .ok : .wrong, subject, found: found.joined(separator: ", "), expected: expected)
    }

    static func text(_ name: DNSName) -> String { String(name.description.dropLast()) }

    /// A tag's value in a `tag=value; ...` record, white space removed.
    static func tag(_ name: String, in record: String) -> String? {
        for part in record.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == name else { continue }
            return pair[1].filter { !$0.isWhitespace }
        }
        return nil
    }

    // MARK: - Certificate

    /// Covers the host name, not expired, and (when port 25 is served) not self-signed.
    func checkCertificate(now: Date) -> Finding {
        let path =
            self.configuration.tls?.certificate ?? self.configuration.files.selfSignedCertificate
        let subject = "certificate \(path)"
        let leaf: Certificate
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            leaf = try Certificate(pemEncoded: text)
        } catch {
            return Finding(
                .missing,
                subject,
                found: "\(error)",
                expected: "a PEM certificate for \(self.records.hostname)"
            )
        }
        let names =
            (try? leaf.extensions.subjectAlternativeNames)??.compactMap { name -> String? in
                if case .dnsName(let dns) = name { return dns.lowercased() }
                return nil
            } ?? []
        let host = self.records.hostname.lowercased()
        let covered = names.contains { $0 == host || ($0.hasPrefix("*.") && host.hasSuffix($0.dropFirst(1))) }
        let found = "names \(names.joined(separator: " ")), valid until \(leaf.notValidAfter)"
        guard covered else { return Finding(.wrong, subject, found: found, expected: "a certificate naming \(host)") }
        guard leaf.notValidAfter > now, leaf.notValidBefore <= now else {
            return Finding(
                .wrong,
                subject,
                found: found + " (expired or not yet valid)",
                expected: "a current certificate"
            )
        }
        let production = self.configuration.listen.smtp.contains { $0.port == 25 }
        if leaf.issuer == leaf.subject, production {
            return Finding(
                .wrong,
                subject,
                found: found + " (self-signed)",
                expected:
                    "one from a certificate authority (Let's Encrypt), set in [tls]: mail programs refuse a self-signed one"
            )
        }
        return Finding(.ok, subject, found: found + (leaf.issuer == leaf.subject ? " (self-signed)" : ""))
    }

    // MARK: - Listeners

    /// Each listener accepts a connection (and, without TLS first, greets: 220 for SMTP, `* OK`
    /// for IMAP).
    func checkListeners() async -> [Finding] {
        var findings: [Finding] = []
        let listen = self.configuration.listen
        for (kind, addresses) in [
            ("smtp", listen.smtp), ("submission", listen.submission), ("submissions", listen.submissions),
            ("imap", listen.imap), ("imaps", listen.imaps),
        ] {
            for address in addresses {
                let host = address.host == "0.0.0.0" ? "127.0.0.1" : address.host == "::" ? "::1" : address.host
                let subject = "listener \(kind) \(address)"
                let tls = kind == "submissions" || kind == "imaps"
                switch await Self.greeting(host: host, port: address.port, tls: tls, imap: kind.hasPrefix("imap")) {
                case .success(let line):
                    findings.append(Finding(.ok, subject, found: line))
                case .failure(let failure):
                    findings.append(
                        Finding(.wrong, subject, found: failure.description, expected: "a listening petrel serve")
                    )
                }
            }
        }
        return findings
    }

    struct ConnectFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The first line the server sends (nothing for implicit TLS: a connection is enough).
    static func greeting(host: String, port: Int, tls: Bool, imap: Bool = false) async -> Result<String, ConnectFailure>
    {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(3))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            if tls {
                try? await channel.channel.close()
                return .success("accepts connections")
            }
            let line = try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    try await channel.executeThenClose { inbound, outbound in
                        var text = ""
                        for try await buffer in inbound {
                            text += String(buffer: buffer)
                            if text.contains("\n") { break }
                        }
                        try? await outbound.write(ByteBuffer(string: imap ? "a LOGOUT\r\n" : "QUIT\r\n"))
                        return String(text.prefix { $0 != "\r" && $0 != "\n" })
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(5))
                    throw ConnectFailure(description: "no greeting within 5 s")
                }
                let first = try await group.next() ?? ""
                group.cancelAll()
                return first
            }
            guard line.hasPrefix(imap ? "* OK" : "220") else {
                return .failure(ConnectFailure(description: "greeted with \"\(line.prefix(80))\""))
            }
            return .success(line)
        } catch {
            return .failure(ConnectFailure(description: "\(Self.reason(error)) (is petrel serve running?)"))
        }
    }

    /// "connection refused" rather than NIO's whole error tree.
    static func reason(_ error: any Error) -> String {
        if let failure = error as? NIOConnectionError, let first = failure.connectionErrors.first?.error {
            return Self.reason(first)
        }
        if let failure = error as? IOError { return String(cString: strerror(failure.errnoCode)).lowercased() }
        return "\(error)"
    }
}
