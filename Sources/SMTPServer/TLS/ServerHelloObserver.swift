import NIOCore

/// Reads the cipher suite the server chose from its own ServerHello, which is sent in the clear
/// (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3). NIOSSL reports the TLS version but not the cipher, and
/// the `Received:` field should name both. Sits between the socket and NIOSSL, looks at the first
/// outbound bytes, reports once with an inbound user event, and leaves the pipeline.
final class ServerHelloObserver: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The cipher suite, as a user event the framing handler picks up.
    struct Observed: Sendable {
        let cipher: String?
    }

    private var seen = ByteBuffer()
    private var done = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Pass the bytes on first: once this handler has left the pipeline, its context goes nowhere.
        context.write(data, promise: promise)
        guard !self.done else { return }
        var bytes = self.unwrapOutboundIn(data)
        self.seen.writeBuffer(&bytes)
        switch ServerHello.cipherSuite(in: self.seen.readableBytesView) {
        case .needMore where self.seen.readableBytes < 16_384:
            break
        case .needMore, .notServerHello:
            self.finish(context: context, cipher: nil)
        case .found(let code):
            self.finish(context: context, cipher: ServerHello.name(of: code))
        }
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        // Leave only after the flush: writeAndFlush calls write and flush on this handler, and a
        // handler that left during write would swallow the flush.
        if self.done {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    private func finish(context: ChannelHandlerContext, cipher: String?) {
        self.done = true
        self.seen = ByteBuffer()
        context.fireUserInboundEventTriggered(Observed(cipher: cipher))
    }
}

/// Just enough of the TLS record and handshake formats to find the ServerHello's cipher suite.
enum ServerHello {
    enum Result: Equatable {
        case needMore
        case notServerHello
        case found(UInt16)
    }

    static func cipherSuite(in bytes: some Collection<UInt8>) -> Result {
        let data = Array(bytes.prefix(5 + 4 + 2 + 32 + 1 + 32 + 2))
        // Record: type 22 (handshake), version, length.
        guard data.count >= 1 else { return .needMore }
        guard data[0] == 22 else { return .notServerHello }
        // Handshake: type 2 (server_hello), 3-octet length, legacy_version, random (32).
        guard data.count >= 6 else { return .needMore }
        guard data[5] == 2 else { return .notServerHello }
        let sessionIDLengthOffset = 5 + 4 + 2 + 32
        guard data.count > sessionIDLengthOffset else { return .needMore }
        let sessionIDLength = Int(data[sessionIDLengthOffset])
        guard sessionIDLength <= 32 else { return .notServerHello }
        let cipherOffset = sessionIDLengthOffset + 1 + sessionIDLength
        guard data.count >= cipherOffset + 2 else { return .needMore }
        return .found(UInt16(data[cipherOffset]) << 8 | UInt16(data[cipherOffset + 1]))
    }

    /// IANA names of the suites Petrel allows; others by number.
    static func name(of code: UInt16) -> String {
        switch code {
        case 0x1301: return "TLS_AES_128_GCM_SHA256"
        case 0x1302: return "TLS_AES_256_GCM_SHA384"
        case 0x1303: return "TLS_CHACHA20_POLY1305_SHA256"
        case 0xC02B: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case 0xC02C: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case 0xC02F: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0xC030: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case 0xCCA8: return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xCCA9: return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        default:
            let hex = String(code, radix: 16, uppercase: true)
            return "0x" + String(repeating: "0", count: 4 - hex.count) + hex
        }
    }
}
