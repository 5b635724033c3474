import NIOCore
import NIOPosix

extension ServerBootstrap {
    /// How every listener of Petrel's (SMTP, IMAP) listens: a backlog of 511, SO_REUSEADDR,
    /// TCP_NODELAY on each connection (set at the TCP level: at the socket level its number is
    /// SO_DEBUG, which only root may set), and an IPv6 socket taking IPv6 only, so that
    /// "[::]:25" and "0.0.0.0:25" can both be listed (Linux would otherwise give the first all
    /// of the port, and refuse the second).
    public static func listener(host: String, group: any EventLoopGroup) -> ServerBootstrap {
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 511)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        if host.contains(":") {
            bootstrap = bootstrap.serverChannelOption(
                ChannelOptions.socket(SocketOptionLevel(IPPROTO_IPV6), SocketOptionName(IPV6_V6ONLY)),
                value: 1
            )
        }
        return bootstrap
    }
}
