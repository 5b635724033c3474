import Accounts
import DNSClient
import MailStore
import NIOCore
import PetrelConfiguration

// The services a configuration describes, for the server and the operator's tools alike: the
// configuration target itself knows nothing of resolvers or account stores.
extension Configuration {
    /// The resolver these settings describe: the configured servers, or /etc/resolv.conf's.
    public func makeDNSClient() -> DNSClient {
        let addresses: [SocketAddress]
        if let servers = self.dns.servers {
            addresses = servers.compactMap { try? SocketAddress(ipAddress: $0.host, port: $0.port) }
        } else {
            addresses = ResolvConf.load().addresses
        }
        return DNSClient(
            configuration: .init(servers: addresses, timeout: .seconds(self.dns.timeout), attempts: self.dns.attempts)
        )
    }

    public var recipientResolver: RecipientResolver {
        RecipientResolver(
            domains: self.domains,
            postmaster: self.postmaster,
            recipientDelimiter: self.recipientDelimiter
        )
    }
}

extension Configuration {
    /// Where everything lives under `data_dir`.
    public var files: DataDirectory { DataDirectory(self.dataDirectory) }
}
