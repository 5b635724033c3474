import IMAPCore
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOSupport
import SMTPServer
import Testing

@testable import IMAPServer

/// What the glue does around the session: STARTTLS in order, limits per user, the silence timer.
@Suite struct IMAPConnectionTests {
    static let tls: TLSContextProvider = {
        let pair = try! SelfSignedCertificate(hostname: "mx.test")
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try! NIOSSLCertificate.fromPEMBytes(Array(pair.certificatePEM.utf8)).map {
                .certificate($0)
            },
            privateKey: .privateKey(try! NIOSSLPrivateKey(bytes: Array(pair.privateKeyPEM.utf8), format: .pem))
        )
        return TLSContextProvider(try! NIOSSLContext(configuration: configuration))
    }()

    @Test func startTLSDropsWhatWasSentBehindIt() async throws {
        let harness = try await IMAPHarness(kind: .imap, tls: Self.tls)
        let greeting = await harness.line()
        #expect(greeting?.contains("STARTTLS") == true && greeting?.contains("LOGINDISABLED") == true)
        #expect(
            try await harness.command("a LOGIN alice@example.test secret").last?.hasPrefix("a NO [PRIVACYREQUIRED]")
                == true
        )
        // A command injected behind STARTTLS, in the same packet, must never run.
        try await harness.send(Array("b STARTTLS\r\nc LOGIN alice@example.test secret\r\n".utf8))
        #expect(await harness.line() == "b OK begin TLS negotiation now")
        #expect(await harness.line(timeout: .milliseconds(300)) == nil, "nothing answers the injected command")
        _ = try await harness.channel.pipeline.handler(type: NIOSSLServerHandler.self).get()
        await harness.close()
    }

    @Test func oneUserHasAtMostItsSessions() async throws {
        let first = try await IMAPHarness()
        var sessions = [first]
        for _ in 0..<3 { sessions.append(try await IMAPHarness(sharing: first)) }
        for session in sessions.prefix(3) { try await session.login() }
        _ = await sessions[3].line()
        let refused = try await sessions[3].command("L LOGIN alice@example.test secret")
        #expect(refused == ["L NO [LIMIT] too many sessions for this user; log out of another"])
        // One logs out: its slot is free again.
        _ = try await sessions[0].command("o LOGOUT")
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await sessions[3].command("M LOGIN alice@example.test secret").last?.hasPrefix("M OK") == true)
        for session in sessions.reversed() { await session.close() }
    }

    @Test func silenceLogsOutAndALoginMustComeInTime() throws {
        // Silent for longer than the limit: BYE and closed.
        let silent = EmbeddedChannel()
        try silent.pipeline.syncOperations.addHandler(
            IMAPSilenceTimer(limit: IMAPSilenceLimit(seconds: 60, loginWithin: 120))
        )
        try silent.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        silent.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(silent.isActive)
        silent.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(try silent.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "* BYE log in sooner\r\n")
        #expect(!silent.isActive)

        // Talking all the time, but never logging in: closed at the login deadline.
        let chatty = EmbeddedChannel()
        let limit = IMAPSilenceLimit(seconds: 60, loginWithin: 60)
        try chatty.pipeline.syncOperations.addHandler(IMAPSilenceTimer(limit: limit))
        try chatty.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for _ in 0..<5 {
            chatty.embeddedEventLoop.advanceTime(by: .seconds(10))
            try chatty.writeInbound(ByteBuffer(string: "a NOOP\r\n"))
        }
        #expect(chatty.isActive)
        chatty.embeddedEventLoop.advanceTime(by: .seconds(15))
        #expect(!chatty.isActive, "no login 65 s after the connection began")

        // After a login the limit is the idle one, and reading resets it.
        let user = EmbeddedChannel()
        let userLimit = IMAPSilenceLimit(seconds: 60, loginWithin: 60)
        try user.pipeline.syncOperations.addHandler(IMAPSilenceTimer(limit: userLimit))
        try user.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        userLimit.loggedIn(idle: 1_800)
        user.embeddedEventLoop.advanceTime(by: .seconds(1_700))
        #expect(user.isActive, "30 minutes of IDLE are allowed (RFC 9051 §5.4)")
        user.embeddedEventLoop.advanceTime(by: .seconds(200))
        #expect(!user.isActive)
    }
}
