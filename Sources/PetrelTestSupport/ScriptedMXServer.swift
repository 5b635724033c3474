import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSupport

/// A remote SMTP server for delivery tests, listening on another loopback address (127.0.0.N)
/// port 25 as a real MX would. It answers by a script: per connection, per recipient, per
/// message; it can stall, drop the connection, or answer 4xx/5xx. What it accepted is kept.
public final class ScriptedMXServer: Sendable {
    public struct Script: Sendable {
        /// The greeting, by connection number (0 first).
        public var greeting: @Sendable (Int) -> String = { _ in "220 scripted.test ESMTP" }
        public var extensions = ["PIPELINING", "8BITMIME", "SIZE 10000000", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
        /// The reply to RCPT TO, by address and connection number.
        public var recipient: @Sendable (String, Int) -> String = { _, _ in "250 2.1.5 OK" }
        /// The reply after the data, by connection number; nil closes the connection instead.
        public var endOfData: @Sendable (Int) -> String? = { _ in "250 2.0.0 queued" }
        /// Waited before the reply to the data, by connection number.
        public var dataDelay: @Sendable (Int) -> Duration = { _ in .zero }
        /// When set, STARTTLS is offered and answered with this text, and nothing more happens
        /// (no TLS here): for a server that injects a reply after its "220".
        public var startTLSReply: String?

        public init() {}
    }

    public struct Message: Sendable {
        public var sender: String
        public var recipients: [String]
        /// As received, dot-stuffing undone, CRLF line ends.
        public var data: [UInt8]
        public var text: String { String(decoding: self.data, as: UTF8.self) }
    }

    public let address: String
    let channel: any Channel
    let shared: Shared

    /// Messages accepted with 250 after their data (while the client was still connected).
    public var messages: [Message] { self.shared.state.withLockedValue { $0.messages } }
    /// Connections accepted so far.
    public var connections: Int { self.shared.state.withLockedValue { $0.connections } }

    /// Ends of data seen so far, answered or not yet (the reply may be held by `dataDelay`).
    public var dataEnds: Int { self.shared.state.withLockedValue { $0.dataEnds } }

    private init(address: String, channel: any Channel, shared: Shared) {
        self.address = address
        self.channel = channel
        self.shared = shared
    }

    public static func start(host: String, port: Int = 25, script: Script = Script()) async throws -> ScriptedMXServer {
        let shared = Shared()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let number = shared.state.withLockedValue { state in
                    state.connections += 1
                    return state.connections - 1
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        Handler(number: number, script: script, shared: shared)
                    )
                }
            }
            .bind(host: host, port: port)
            .get()
        return ScriptedMXServer(address: host, channel: channel, shared: shared)
    }

    public func stop() async {
        try? await self.channel.close()
    }

    /// Waits until `count` messages are in, or `timeout` passes.
    public func waitForMessages(_ count: Int, timeout: Duration = .seconds(20)) async -> [Message] {
        _ = await eventually(within: timeout) { self.messages.count >= count }
        return self.messages
    }

    final class Shared: Sendable {
        struct State {
            var connections = 0
            var dataEnds = 0
            var messages: [Message] = []
        }

        let state = NIOLockedValueBox(State())

        func record(_ message: Message) {
            self.state.withLockedValue { $0.messages.append(message) }
        }
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let number: Int
        let script: Script
        let shared: Shared
        var line: [UInt8] = []
        var inData = false
        var sender = ""
        var recipients: [String] = []
        var data: [UInt8] = []

        init(number: Int, script: Script, shared: Shared) {
            self.number = number
            self.script = script
            self.shared = shared
        }

        func channelActive(context: ChannelHandlerContext) {
            self.reply(context, self.script.greeting(self.number))
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            for byte in buffer.readableBytesView {
                self.line.append(byte)
                guard byte == 0x0A else { continue }
                let line = self.line
                self.line = []
                self.handle(context, line)
            }
        }

        func handle(_ context: ChannelHandlerContext, _ line: [UInt8]) {
            if self.inData {
                if line == [0x2E, 0x0D, 0x0A] {
                    self.inData = false
                    self.endOfData(context)
                    return
                }
                self.data += line.first == 0x2E ? Array(line.dropFirst()) : line
                return
            }
            let text = String(decoding: line.filter { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
            let upper = text.uppercased()
            if upper.hasPrefix("EHLO") {
                let lines =
                    ["scripted.test"] + self.script.extensions + (self.script.startTLSReply == nil ? [] : ["STARTTLS"])
                self.reply(
                    context,
                    lines.enumerated().map { "250\($0.offset == lines.count - 1 ? " " : "-")\($0.element)" }
                        .joined(separator: "\r\n")
                )
            } else if upper.hasPrefix("HELO") {
                self.reply(context, "250 scripted.test")
            } else if upper.hasPrefix("MAIL FROM:") {
                self.sender = Self.path(text)
                self.recipients = []
                self.reply(context, "250 2.1.0 OK")
            } else if upper.hasPrefix("RCPT TO:") {
                let address = Self.path(text)
                let answer = self.script.recipient(address, self.number)
                if answer.hasPrefix("2") { self.recipients.append(address) }
                self.reply(context, answer)
            } else if upper == "DATA" {
                if self.recipients.isEmpty {
                    self.reply(context, "554 5.5.1 no valid recipients")
                } else {
                    self.inData = true
                    self.data = []
                    self.reply(context, "354 go ahead")
                }
            } else if upper == "STARTTLS", let answer = self.script.startTLSReply {
                self.reply(context, answer)
            } else if upper == "RSET" {
                self.recipients = []
                self.reply(context, "250 2.0.0 OK")
            } else if upper == "QUIT" {
                self.reply(context, "221 2.0.0 bye")
                context.close(promise: nil)
            } else {
                self.reply(context, "502 5.5.2 not implemented")
            }
        }

        func endOfData(_ context: ChannelHandlerContext) {
            let message = Message(sender: self.sender, recipients: self.recipients, data: self.data)
            self.shared.state.withLockedValue { $0.dataEnds += 1 }
            let answer = self.script.endOfData(self.number)
            let send = { [self] in
                guard let answer else {
                    context.close(promise: nil)
                    return
                }
                // Taken only when the client can still hear the 250 (a real server would keep
                // it either way, and deliver it twice: the window every SMTP client has).
                guard context.channel.isActive else { return }
                if answer.hasPrefix("2") { self.shared.record(message) }
                self.reply(context, answer)
            }
            let delay = self.script.dataDelay(self.number)
            if delay > .zero {
                context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { send() }
            } else {
                send()
            }
        }

        func reply(_ context: ChannelHandlerContext, _ text: String) {
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
        }

        static func path(_ command: String) -> String {
            guard let open = command.firstIndex(of: "<"), let close = command.firstIndex(of: ">") else { return "" }
            return String(command[command.index(after: open)..<close])
        }
    }
}
