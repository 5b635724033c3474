import DNSCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

extension TestDNSServer {
    /// What the handlers share: the zones, the knobs, the counters, the open TCP connections.
    final class Shared: Sendable {
        struct Reply {
            var message: [UInt8]
            var delay: Duration
        }

        let zones: Zones
        let silentNames: Set<DNSName>
        let behaviour = NIOLockedValueBox(TestDNSServer.Behaviour.answer)
        let statistics = NIOLockedValueBox(TestDNSServer.Statistics())
        let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

        init(zones: Zones, silentNames: Set<DNSName>) {
            self.zones = zones
            self.silentNames = silentNames
        }

        /// The answer to one query, or nil for none.
        func reply(to packet: [UInt8], overUDP: Bool) -> Reply? {
            self.statistics.withLockedValue { statistics in
                if overUDP {
                    statistics.udpQueries += 1
                } else {
                    statistics.tcpQueries += 1
                }
            }
            guard let query = try? DNSMessage(decoding: packet), !query.isResponse else { return nil }
            let behaviour = self.behaviour.withLockedValue { $0 }
            var delay = Duration.zero
            switch behaviour {
            case .answer, .serverFailure:
                break
            case .silent:
                return nil
            case .delay(let duration):
                delay = duration
            }
            if let name = query.questions.first?.name, self.silentNames.contains(name) { return nil }
            var response: DNSMessage
            if behaviour == .serverFailure {
                response = Zones.header(for: query)
                response.responseCode = .serverFailure
            } else {
                response = self.zones.answer(query)
            }
            var message = response.encode()
            if overUDP {
                // RFC 6891 §7: a payload size under 512 is taken as 512, the size without EDNS.
                let limit = max(512, Int(query.ednsPayloadSize ?? 512))
                if message.count > limit {
                    // RFC 2181 §9: TC, and nothing the client could take for the whole answer.
                    response.truncated = true
                    response.answers = []
                    response.authorities = []
                    response.additionals = []
                    message = response.encode()
                }
            } else if message.count > Int(UInt16.max) {
                return nil
            }
            return Reply(message: message, delay: delay)
        }
    }

    /// Queries over UDP: one a datagram, answered to the address it came from.
    final class DatagramHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>

        let shared: Shared

        init(shared: Shared) {
            self.shared = shared
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = Self.unwrapInboundIn(data)
            guard let reply = self.shared.reply(to: Array(envelope.data.readableBytesView), overUDP: true) else {
                return
            }
            let datagram = AddressedEnvelope(
                remoteAddress: envelope.remoteAddress,
                data: ByteBuffer(bytes: reply.message)
            )
            if reply.delay > .zero {
                context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(reply.delay)) {
                    context.writeAndFlush(Self.wrapOutboundOut(datagram), promise: nil)
                }
            } else {
                context.writeAndFlush(Self.wrapOutboundOut(datagram), promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // One bad datagram, or a send to a client that has gone, must not close the socket.
        }
    }

    /// Queries over TCP, each with the two-octet length prefix of RFC 1035 §4.2.2; several may come
    /// on one connection (RFC 7766 §6.2.1).
    final class StreamHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let shared: Shared
        var received = ByteBuffer()

        init(shared: Shared) {
            self.shared = shared
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = Self.unwrapInboundIn(data)
            self.received.writeBuffer(&chunk)
            while let length = self.received.getInteger(at: self.received.readerIndex, as: UInt16.self),
                self.received.readableBytes >= 2 + Int(length)
            {
                self.received.moveReaderIndex(forwardBy: 2)
                let packet = self.received.readBytes(length: Int(length)) ?? []
                guard let reply = self.shared.reply(to: packet, overUDP: false) else { continue }
                var framed = ByteBuffer()
                framed.writeInteger(UInt16(reply.message.count))
                framed.writeBytes(reply.message)
                if reply.delay > .zero {
                    context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(reply.delay)) {
                        context.writeAndFlush(Self.wrapOutboundOut(framed), promise: nil)
                    }
                } else {
                    context.writeAndFlush(Self.wrapOutboundOut(framed), promise: nil)
                }
            }
            self.received.discardReadBytes()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
