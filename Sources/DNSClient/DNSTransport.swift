import DNSCore
import NIOCore
import NIOPosix
import NIOSupport
import PetrelSystem

/// Sends one query to one server and returns the matching response: over UDP (a fresh socket
/// each time, so a fresh random source port), or over TCP with the two-octet length prefix of
/// RFC 1035 §4.2.2 (RFC 7766) when a UDP answer came back truncated.
struct DNSTransport: Sendable {
    let eventLoopGroup: any EventLoopGroup

    enum Failure: Error {
        case timeout
        case unreachable(String)
    }

    /// UDP. Datagrams that are not a response to this query (another id, another question,
    /// unreadable) are dropped and the wait goes on: a spoofer has to guess id and port.
    func udp(_ query: DNSQuery, to server: SocketAddress, timeout: Duration) async throws(Failure) -> DNSMessage {
        let packet = query.encode()
        do {
            let channel = try await DatagramBootstrap(group: self.eventLoopGroup)
                .connect(to: server) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                            wrappingChannelSynchronously: channel
                        )
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: packet)))
                return try await Self.within(timeout) {
                    for try await envelope in inbound {
                        guard let message = try? DNSMessage(decoding: Array(envelope.data.readableBytesView)),
                            query.isAnswered(by: message)
                        else { continue }
                        return message
                    }
                    throw Failure.unreachable("the socket closed")
                }
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .unreachable("\(server.logText): \(Self.describe(error))")
        }
    }

    /// TCP, for answers too big for UDP.
    func tcp(_ query: DNSQuery, to server: SocketAddress, timeout: Duration) async throws(Failure) -> DNSMessage {
        let packet = query.encode()
        do {
            return try await Self.within(timeout) {
                let channel = try await ClientBootstrap(group: self.eventLoopGroup)
                    .connectTimeout(.seconds(Int64(timeout.components.seconds) + 1))
                    .connect(to: server) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
                return try await channel.executeThenClose { inbound, outbound in
                    var framed = ByteBuffer()
                    framed.writeInteger(UInt16(packet.count))
                    framed.writeBytes(packet)
                    try await outbound.write(framed)
                    var received = ByteBuffer()
                    for try await chunk in inbound {
                        var chunk = chunk
                        received.writeBuffer(&chunk)
                        guard let length = received.getInteger(at: received.readerIndex, as: UInt16.self),
                            received.readableBytes >= 2 + Int(length)
                        else { continue }
                        let bytes = Array(received.readableBytesView.dropFirst(2).prefix(Int(length)))
                        guard let message = try? DNSMessage(decoding: bytes), query.isAnswered(by: message) else {
                            throw Failure.unreachable("an unreadable answer over TCP")
                        }
                        return message
                    }
                    throw Failure.unreachable("the server closed the TCP connection")
                }
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .unreachable("\(server.logText): \(Self.describe(error))")
        }
    }

    /// "connection refused" rather than NIO's debug description.
    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        return "\(error)"
    }

    /// Runs `body`, giving up after `timeout`.
    static func within<T: Sendable>(
        _ timeout: Duration,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw Failure.timeout
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}
