import MailCore
import NIOCore
import NIOSSL
import NIOSupport
import SMTPCore

/// One connection's I/O, on behalf of `SMTPClient.deliver`.
struct Connection {
    let channel: any Channel
    let reader: ReplyReader
    let target: SMTPClient.Target
    let settings: SMTPClient.Settings
    let tlsContext: NIOSSLContext

    func limit(_ timeout: Duration) -> Duration {
        guard let cap = self.settings.replyTimeoutLimit else { return timeout }
        return min(timeout, cap)
    }

    /// Arms a timer that ends the connection if `body` takes longer than `timeout`.
    func within<T>(_ timeout: Duration, _ what: String, _ body: () async throws -> T) async rethrows -> T {
        let limit = self.limit(timeout)
        let reader = self.reader
        let timer = self.channel.eventLoop.scheduleTask(in: TimeAmount(limit)) {
            reader.fail(.timedOut(what, seconds: limit.components.seconds))
        }
        defer { timer.cancel() }
        return try await body()
    }

    func next(_ iterator: inout AsyncStream<ReplyReader.Event>.Iterator, timeout: Duration) async -> ReplyReader.Event {
        let limit = self.limit(timeout)
        let reader = self.reader
        let timer = self.channel.eventLoop.scheduleTask(in: TimeAmount(limit)) {
            reader.fail(.timedOut("waiting for a reply", seconds: limit.components.seconds))
        }
        defer { timer.cancel() }
        return await iterator.next() ?? .failed(.closedByServer)
    }

    /// Sends STARTTLS, with the reader told first that the reply to it must be the last thing
    /// in plaintext.
    func requestTLS(timeout: Duration) async throws {
        let reader = self.reader
        try await self.channel.eventLoop.submit { reader.expectTLSReply() }.get()
        try await self.send(["STARTTLS"], timeout: timeout)
    }

    func send(_ lines: [String], timeout: Duration) async throws {
        var buffer = ByteBuffer()
        for line in lines {
            buffer.writeString(line)
            buffer.writeBytes([0x0D, 0x0A])
        }
        try await self.within(timeout, "sending a command") {
            try await self.channel.writeAndFlush(buffer)
        }
    }

    /// Streams the message through the encoder; the final "." goes with the last block.
    func send(_ message: any OutgoingMessage, timeout: Duration) async throws {
        var encoder = MessageDataEncoder()
        var output: [UInt8] = []
        try await message.stream { block in
            output.removeAll(keepingCapacity: true)
            encoder.encode(block.readableBytesView, into: &output)
            let buffer = ByteBuffer(bytes: output)
            try await self.within(timeout, "sending the message") {
                try await self.channel.writeAndFlush(buffer)
            }
        }
        output.removeAll(keepingCapacity: true)
        encoder.finish(into: &output)
        let buffer = ByteBuffer(bytes: output)
        try await self.within(timeout, "sending the message") {
            try await self.channel.writeAndFlush(buffer)
        }
    }

    /// Adds TLS in front of the reader and waits for the handshake.
    func startTLS(
        _ iterator: inout AsyncStream<ReplyReader.Event>.Iterator,
        timeout: Duration
    ) async -> Result<TLSDetails, ClientSession.Failure> {
        let verification = VerificationRecord()
        let verifier = self.settings.verifier
        let hostname = self.target.hostname
        let required = self.target.tlsPolicy == .required
        let reader = self.reader
        let channel = self.channel
        let context = self.tlsContext
        // SNI takes a host name, never an address literal.
        let serverName = IPAddress(hostname) == nil && !hostname.isEmpty ? hostname : nil
        do {
            try await channel.eventLoop.submit {
                guard reader.beginTLS() else {
                    throw ClientSession.Failure.protocolViolation("the server sent data after its reply to STARTTLS")
                }
                let callback: NIOSSLCustomVerificationCallback = { certificates, promise in
                    Task {
                        let result = await verifier.verify(certificates, hostname: hostname)
                        verification.problem.withLockedValue { $0 = result }
                        // Opportunistic TLS takes any certificate (RFC 7435 §3); a relay must prove itself.
                        promise.succeed(required && result != nil ? .failed : .certificateVerified)
                    }
                }
                let handler = try NIOSSLClientHandler(
                    context: context,
                    serverHostname: serverName,
                    customVerificationCallback: callback
                )
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            }.get()
        } catch {
            return .failure((error as? ClientSession.Failure) ?? .connection("TLS: \(error)"))
        }
        switch await self.next(&iterator, timeout: timeout) {
        case .tlsEstablished(let version):
            let problem = verification.problem.withLockedValue { $0 }
            return .success(TLSDetails(version: version, verified: problem == nil, problem: problem))
        case .tlsFailed(let why):
            if required, let problem = verification.problem.withLockedValue({ $0 }) {
                return .failure(.untrustedCertificate(problem))
            }
            return .failure(.tlsHandshake(why))
        case .failed(let failure):
            return .failure(.tlsHandshake("\(failure)"))
        case .reply:
            return .failure(.protocolViolation("the server sent a reply instead of a TLS handshake"))
        }
    }
}
