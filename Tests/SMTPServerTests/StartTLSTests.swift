import Foundation
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOSupport
import NIOTLS
import SMTPCore
import Testing

@testable import SMTPServer

/// STARTTLS on EmbeddedChannel with a real TLS handshake (RFC 3207, CVE-2011-0411).
@Suite struct StartTLSTests {
    static let serverContext: NIOSSLContext = {
        let pair = try! SelfSignedCertificate(hostname: "mx.test")
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [
                .certificate(try! NIOSSLCertificate(bytes: Array(pair.certificatePEM.utf8), format: .pem))
            ],
            privateKey: .privateKey(try! NIOSSLPrivateKey(bytes: Array(pair.privateKeyPEM.utf8), format: .pem))
        )
        return try! NIOSSLContext(configuration: configuration)
    }()

    static let clientContext: NIOSSLContext = {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try! NIOSSLContext(configuration: configuration)
    }()

    let server = EmbeddedChannel()
    let client = EmbeddedChannel()

    init() throws {
        try self.server.pipeline.syncOperations.addHandler(
            SMTPFramingHandler(
                limits: SMTPLimits(),
                timeouts: .init(),
                tls: TLSContextProvider(Self.serverContext)
            )
        )
        try self.server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
    }

    func events() throws -> [String] {
        var result: [String] = []
        while let element = try self.server.readInbound(as: SMTPServerInbound.self) {
            switch element {
            case .event(.command(.success(let command))): result.append(command.verb)
            case .tlsEstablished(let info): result.append("tls \(info.version) \(info.cipher ?? "?")")
            default: result.append("\(element)")
            }
        }
        return result
    }

    func reply(_ code: Int, then continuation: SMTPInboundFramer.Continuation) {
        self.server.write(
            SMTPServerOutbound.reply(
                SMTPReply(code, EnhancedStatusCode(2, 0, 0), "ok"),
                then: continuation,
                messageOpen: false
            ),
            promise: nil
        )
        self.server.flush()
    }

    /// The greeting, as the connection writes it first; drained from the output.
    func greet() throws {
        self.reply(220, then: .commands)
        while try self.server.readOutbound(as: ByteBuffer.self) != nil {}
    }

    /// Moves bytes between the two channels until neither has anything to say.
    func pump() throws {
        // NIOSSL writes what a read produced at read-complete, which writeInbound does not fire.
        var moved = true
        var rounds = 0
        while moved {
            rounds += 1
            if rounds > 20 {
                Issue.record("the exchange does not settle")
                return
            }
            moved = false
            while let bytes = try self.client.readOutbound(as: ByteBuffer.self) {
                try self.server.writeInbound(bytes)
                self.server.pipeline.fireChannelReadComplete()
                moved = true
            }
            while let bytes = try self.server.readOutbound(as: ByteBuffer.self) {
                try self.client.writeInbound(bytes)
                self.client.pipeline.fireChannelReadComplete()
                moved = true
            }
        }
    }

    @Test func bytesPipelinedAfterStartTLSAreNeverExecuted() throws {
        try self.greet()
        try self.server.writeInbound(
            ByteBuffer(
                string:
                    "EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<attacker@evil.example>\r\nRCPT TO:<victim@mx.test>\r\n"
            )
        )
        #expect(try self.events() == ["EHLO", "STARTTLS"])
        self.reply(250, then: .commands)
        self.reply(220, then: .startTLS)
        var plaintext = ""
        while let bytes = try self.server.readOutbound(as: ByteBuffer.self) { plaintext += String(buffer: bytes) }
        #expect(plaintext == "250 2.0.0 ok\r\n220 2.0.0 ok\r\n", "the 220 goes out before TLS starts")

        // The handshake, with the client's TLS handler in its own channel.
        try self.client.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: Self.clientContext, serverHostname: nil)
        )
        try self.client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        try self.pump()
        let afterHandshake = try self.events()
        #expect(afterHandshake.count == 1)
        #expect(afterHandshake.first?.hasPrefix("tls TLSv1.3 TLS_") == true, "\(afterHandshake)")

        self.client.writeAndFlush(ByteBuffer(string: "EHLO c.example\r\n"), promise: nil)
        try self.pump()
        // Only what the client sent inside TLS: the injected MAIL and RCPT are gone.
        #expect(try self.events() == ["EHLO"])
    }

    /// The same injection, sent before the greeting: the greeting answers no command, so it
    /// must not count against the pipelined EHLO and STARTTLS (before, it did, and the reply to
    /// EHLO resumed the framer that STARTTLS had paused: the plaintext behind it was read as
    /// commands and answered inside TLS).
    @Test func bytesSentBeforeTheGreetingCannotSmuggleCommandsThroughStartTLS() throws {
        try self.server.writeInbound(
            ByteBuffer(
                string:
                    "EHLO c.example\r\nSTARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<attacker@evil.example>\r\n"
            )
        )
        #expect(try self.events() == ["EHLO", "STARTTLS"])
        self.reply(220, then: .commands)  // the greeting, written after the client's bytes came
        #expect(try self.events() == [])
        self.reply(250, then: .commands)
        #expect(try self.events() == [], "STARTTLS's reply is still due: nothing more is read")
        self.reply(220, then: .startTLS)
        while try self.server.readOutbound(as: ByteBuffer.self) != nil {}

        try self.client.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: Self.clientContext, serverHostname: nil)
        )
        try self.client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        try self.pump()
        let afterHandshake = try self.events()
        #expect(afterHandshake.count == 1 && afterHandshake.first?.hasPrefix("tls ") == true, "\(afterHandshake)")
        self.client.writeAndFlush(ByteBuffer(string: "EHLO c.example\r\n"), promise: nil)
        try self.pump()
        #expect(try self.events() == ["EHLO"], "the injected EHLO and MAIL are gone")
    }

    @Test func garbageInsteadOfAHandshakeClosesTheConnection() throws {
        try self.greet()
        try self.server.writeInbound(ByteBuffer(string: "STARTTLS\r\n"))
        _ = try self.events()
        self.reply(220, then: .startTLS)
        while try self.server.readOutbound(as: ByteBuffer.self) != nil {}
        #expect(throws: (any Error).self) {
            try self.server.writeInbound(ByteBuffer(string: "THIS IS NOT TLS\r\n\r\n"))
        }
        #expect(!self.server.isActive)
    }
}

@Suite struct ServerHelloTests {
    @Test func findsTheCipherSuite() {
        // Record header, ServerHello header, version, 32-octet random, session id of 3, suite 0x1301.
        var hello: [UInt8] = [22, 3, 3, 0, 80, 2, 0, 0, 76, 3, 3] + [UInt8](repeating: 7, count: 32) + [3, 1, 2, 3]
        #expect(ServerHello.cipherSuite(in: hello) == .needMore)
        hello += [0x13, 0x01, 0]
        #expect(ServerHello.cipherSuite(in: hello) == .found(0x1301))
        #expect(ServerHello.name(of: 0x1301) == "TLS_AES_128_GCM_SHA256")
        #expect(ServerHello.name(of: 0x0A0B) == "0x0A0B")
        #expect(ServerHello.cipherSuite(in: [23, 3, 3]) == .notServerHello)
        #expect(ServerHello.cipherSuite(in: [22, 3, 3, 0, 5, 1]) == .notServerHello)
        #expect(
            ServerHello.cipherSuite(
                in: [22, 3, 3, 0, 80, 2, 0, 0, 76, 3, 3] + [UInt8](repeating: 0, count: 32) + [200]
            ) == .notServerHello
        )
    }
}
