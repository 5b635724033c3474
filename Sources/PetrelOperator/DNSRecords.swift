import DNSCore
import Foundation
import MailAuth
import MailCore
import PetrelConfiguration

/// The DNS records a Petrel installation needs, each with the reason it is there: what
/// `petrel dns` prints and `petrel doctor` checks. Pure: the caller supplies the keys.
public struct DNSRecords: Sendable {
    public struct Record: Hashable, Sendable {
        public enum Kind: String, Hashable, Sendable {
            case a = "A"
            case aaaa = "AAAA"
            case mx = "MX"
            case txt = "TXT"
            case srv = "SRV"
            case ptr = "PTR"
        }

        /// Fully qualified, without the final dot.
        public var name: String
        public var kind: Kind
        /// In presentation form, TXT without quotes: `10 mx.example.com`, `v=spf1 mx -all`.
        public var value: String
        public var reason: String
        /// Not ours to publish: a PTR is set by whoever owns the address.
        public var askOwner = false
        /// Several records of this name and type may coexist (MX, A); for TXT, which one is
        /// ours is told by its prefix (`v=spf1`, `v=DKIM1`...).
        public var txtPrefix: String? {
            guard self.kind == .txt else { return nil }
            return self.value.split(separator: ";").first.map { String($0.split(separator: " ").first ?? $0) }
        }
    }

    /// A DKIM key to publish.
    public struct Key: Hashable, Sendable {
        public var domain: String
        public var selector: String
        /// The TXT value (`v=DKIM1; k=rsa; p=...`).
        public var record: String

        public init(domain: String, selector: String, record: String) {
            self.domain = domain
            self.selector = selector
            self.record = record
        }
    }

    public var hostname: String
    public var domains: [String]
    /// The public addresses mail to `hostname` arrives at.
    public var addresses: [IPAddress]
    public var keys: [Key]
    /// Where reports go (DMARC rua, TLS-RPT); `postmaster@` the domain when nil.
    public var reportAddress: String?

    public init(hostname: String, domains: [String], addresses: [IPAddress], keys: [Key], reportAddress: String? = nil)
    {
        self.hostname = hostname
        self.domains = domains
        self.addresses = addresses
        self.keys = keys
        self.reportAddress = reportAddress
    }

    /// Every record, host records first, then per domain.
    public var records: [Record] {
        var records: [Record] = []
        for address in self.addresses {
            records.append(
                Record(
                    name: self.hostname,
                    kind: address.isIPv4 ? .a : .aaaa,
                    value: address.description,
                    reason: "the address of the mail host: MX records point at this name"
                )
            )
        }
        // The HELO identity is checked with SPF too (RFC 7208 §2.3).
        records.append(
            Record(
                name: self.hostname,
                kind: .txt,
                value: "v=spf1 a -all",
                reason: "SPF for the host name itself (the HELO identity, and bounces from MAILER-DAEMON)"
            )
        )
        for domain in self.domains {
            let reports = self.reportAddress ?? "postmaster@\(domain)"
            records.append(
                Record(
                    name: domain,
                    kind: .mx,
                    value: "10 \(self.hostname)",
                    reason: "mail for \(domain) goes to this host"
                )
            )
            records.append(
                Record(
                    name: domain,
                    kind: .txt,
                    value: "v=spf1 mx -all",
                    reason: "SPF: only the MX host sends mail for \(domain); everyone else fails"
                )
            )
            for key in self.keys where key.domain == domain {
                records.append(
                    Record(
                        name: "\(key.selector)._domainkey.\(domain)",
                        kind: .txt,
                        value: key.record,
                        reason: "DKIM: the public key of selector \(key.selector), which signs mail from \(domain)"
                    )
                )
            }
            records.append(
                Record(
                    name: "_dmarc.\(domain)",
                    kind: .txt,
                    value: "v=DMARC1; p=none; rua=mailto:\(reports)",
                    reason:
                        "DMARC: start with p=none and read the reports; move to p=quarantine, then p=reject, once they show only your mail"
                )
            )
            records.append(
                Record(
                    name: "_smtp._tls.\(domain)",
                    kind: .txt,
                    value: "v=TLSRPTv1; rua=mailto:\(reports)",
                    reason: "TLS-RPT (RFC 8460): where other servers report TLS trouble delivering to you"
                )
            )
            records.append(
                Record(
                    name: "_mta-sts.\(domain)",
                    kind: .txt,
                    value: "v=STSv1; id=\(Self.policyID(self.hostname))",
                    reason:
                        "MTA-STS (RFC 8461): announces the policy at https://mta-sts.\(domain)/.well-known/mta-sts.txt (below); change id= when the policy changes"
                )
            )
            records.append(
                Record(
                    name: "_submission._tcp.\(domain)",
                    kind: .srv,
                    value: "0 1 587 \(self.hostname)",
                    reason: "RFC 6186: mail clients find the submission port (STARTTLS)"
                )
            )
            records.append(
                Record(
                    name: "_submissions._tcp.\(domain)",
                    kind: .srv,
                    value: "0 1 465 \(self.hostname)",
                    reason: "RFC 8314: mail clients find submission over implicit TLS"
                )
            )
            records.append(
                Record(
                    name: "_imaps._tcp.\(domain)",
                    kind: .srv,
                    value: "0 1 993 \(self.hostname)",
                    reason: "RFC 6186 and 8314: mail clients find IMAP over implicit TLS, preferred"
                )
            )
            records.append(
                Record(
                    name: "_imap._tcp.\(domain)",
                    kind: .srv,
                    value: "10 1 143 \(self.hostname)",
                    reason: "RFC 6186: mail clients find IMAP with STARTTLS"
                )
            )
        }
        for address in self.addresses {
            guard let reverse = DNSName.reverse(address: address.octets) else { continue }
            records.append(
                Record(
                    name: String(reverse.description.dropLast()),
                    kind: .ptr,
                    value: self.hostname,
                    reason:
                        "reverse DNS: ask the owner of \(address) (your provider) to set it; receivers distrust mail from addresses without it",
                    askOwner: true
                )
            )
        }
        return records
    }

    /// The MTA-STS policy file (RFC 8461 §3.2) for `mta-sts.DOMAIN/.well-known/mta-sts.txt`:
    /// testing mode until the reports show that TLS works.
    public var mtaSTSPolicy: String {
        "version: STSv1\nmode: testing\nmx: \(self.hostname)\nmax_age: 604800\n"
    }

    /// Changes when the host name (the policy's content) does.
    static func policyID(_ hostname: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in hostname.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 36)
    }

    // MARK: - Output

    public enum Format: String, CaseIterable, Sendable {
        case table, zone, json
    }

    public func rendered(_ format: Format) -> String {
        switch format {
        case .table: return self.table
        case .zone: return self.zone
        case .json: return self.json
        }
    }

    /// For a BIND zone file as it is: absolute names, quoted TXT strings of at most 255 octets.
    var zone: String {
        var lines = ["; DNS records for \(self.hostname) (petrel dns --format zone)"]
        for record in self.records {
            lines.append("; \(record.reason)")
            let line = "\(record.name).\tIN\t\(record.kind.rawValue)\t\(Self.zoneValue(record))"
            lines.append(record.askOwner ? "; (set by the address's owner) " + line : line)
        }
        lines.append("; The MTA-STS policy, served over HTTPS at https://mta-sts.DOMAIN/.well-known/mta-sts.txt")
        lines += self.mtaSTSPolicy.split(separator: "\n").map { ";   " + $0 }
        return lines.joined(separator: "\n") + "\n"
    }

    static func zoneValue(_ record: Record) -> String {
        switch record.kind {
        case .txt: return Self.quoted(record.value)
        case .mx, .srv, .ptr:
            // Host names end with a dot: absolute, whatever the zone's $ORIGIN.
            return record.value + "."
        case .a, .aaaa: return record.value
        }
    }

    /// TXT strings of at most 255 octets each (RFC 1035 §3.3.14), quoted.
    static func quoted(_ text: String) -> String {
        var chunks: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            var chunk = rest.prefix(255)
            while chunk.utf8.count > 255 { chunk = chunk.dropLast() }
            chunks.append(
                "\"" + chunk.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                    + "\""
            )
            rest = rest.dropFirst(chunk.count)
        }
        return chunks.isEmpty ? "\"\"" : chunks.joined(separator: " ")
    }

    var table: String {
        var lines: [String] = []
        for record in self.records {
            lines.append("\(record.name)  \(record.kind.rawValue)  \(record.value)")
            lines.append("    \(record.reason)")
        }
        lines.append("")
        lines.append("MTA-STS policy, to serve at https://mta-sts.DOMAIN/.well-known/mta-sts.txt for each domain:")
        lines += self.mtaSTSPolicy.split(separator: "\n").map { "    " + $0 }
        return lines.joined(separator: "\n") + "\n"
    }

    var json: String {
        struct Output: Encodable {
            struct Item: Encodable {
                var name, type, value, reason: String
                var askOwner: Bool
            }
            var records: [Item]
            var mtaSTSPolicy: String
        }
        let output = Output(
            records: self.records.map {
                .init(name: $0.name, type: $0.kind.rawValue, value: $0.value, reason: $0.reason, askOwner: $0.askOwner)
            },
            mtaSTSPolicy: self.mtaSTSPolicy
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = (try? encoder.encode(output)) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

extension DNSRecords {
    /// The records for a configuration, with the DKIM keys found under its data directory.
    public init(configuration: Configuration) throws {
        let store = DKIMKeyStore(dataDirectory: configuration.dataDirectory)
        var keys: [Key] = []
        for domain in configuration.domains {
            for signer in try store.signers(for: domain) {
                keys.append(Key(domain: domain, selector: signer.selector, record: signer.key.record))
            }
        }
        self.init(
            hostname: configuration.hostname,
            domains: configuration.domains,
            addresses: configuration.publicAddresses,
            keys: keys,
            reportAddress: configuration.postmaster?.description
        )
    }
}
