import NIOCore

/// How a connection is closed when the server, not the client, decides it ends.
public enum ConnectionClosing {
    /// How long a reply that ends the session may take to reach the client before the socket is
    /// closed anyway. The reply may never go out: the client does not read (the socket stays
    /// full), or TLS has not finished its handshake (NIOSSL holds every write until it has). A
    /// close the server decided on must not wait for either.
    public static let grace = TimeAmount.seconds(5)

    /// Closes a connection whose client does not take what we send, with a reset (SO_LINGER 0):
    /// a plain close would queue the FIN behind the replies the client never reads, and the
    /// kernel would keep the connection (and its megabytes of unsent replies) until it gave up
    /// retrying, while the client never learned it was closed.
    public static func abort(context: ChannelHandlerContext) {
        if let socket = context.channel as? any SocketOptionProvider {
            // On the channel's event loop, so set before the close below.
            _ = socket.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0))
        }
        context.close(promise: nil)
    }
}
