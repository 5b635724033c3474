import DNSClient
import DNSCore
import NIOCore
import PetrelConfiguration

/// `petrel resolve`: a name looked up with Petrel's own resolver, printed as dig does.
public enum ResolveTool {
    /// Prints each record with its TTL, then the status and the AD bit. Throws `ToolExit(1)` for
    /// NXDOMAIN or no data, `ToolExit(2)` when the lookup failed.
    public static func lookUp(
        _ configuration: Configuration,
        type typeText: String,
        name nameText: String,
        server: String?
    ) async throws {
        guard let type = DNSRecordType(typeText) else { throw ToolUsageError("unknown record type '\(typeText)'") }
        var name = DNSName(nameText)
        if type == .ptr, let address = try? SocketAddress(ipAddress: nameText, port: 0) {
            name = DNSName.reverse(address: Self.octets(address))
        }
        guard let name else { throw ToolUsageError("'\(nameText)' is not a domain name") }
        let client = try self.resolver(configuration, server: server, option: "--server")
        let result = await client.lookup(name, type)
        for record in result.cnames + result.records { print(record.presentation) }
        let authenticated = result.authenticated ? "yes" : "no"
        switch result.status {
        case .answer:
            let count = result.records.count
            print(";; status: NOERROR, \(count) record\(count == 1 ? "" : "s"); AD: \(authenticated)")
        case .noData:
            print(";; status: NOERROR, no \(type) records; AD: \(authenticated)")
            throw ToolExit(1)
        case .nxDomain:
            print(";; status: NXDOMAIN; AD: \(authenticated)")
            throw ToolExit(1)
        case .failure(let failure):
            print(";; status: \(failure)")
            throw ToolExit(2)
        }
    }

    /// Petrel's resolver as configured, or asking only `server` (given with `option`); exit
    /// status 2 when there is no server to ask at all.
    public static func resolver(_ configuration: Configuration, server: String?, option: String) throws -> DNSClient {
        var configuration = configuration
        if let server {
            guard let address = ListenAddress(parsing: server, defaultPort: 53),
                (try? SocketAddress(ipAddress: address.host, port: address.port)) != nil
            else {
                throw ToolUsageError("\(option) takes an IP address and port, like 127.0.0.1:53 or [::1]:5353")
            }
            configuration.dns.servers = [address]
        }
        let client = configuration.makeDNSClient()
        guard !client.configuration.servers.isEmpty else {
            printError("no DNS server: give \(option), set [dns] servers, or add a nameserver to /etc/resolv.conf")
            throw ToolExit(2)
        }
        return client
    }

    static func octets(_ address: SocketAddress) -> [UInt8] {
        switch address {
        case .v4(let v4): return withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default: return []
        }
    }
}
