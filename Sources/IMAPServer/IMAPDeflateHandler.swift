import CompressNIO
import NIOCore

/// COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (RFC 1951) both ways, below the session and above
/// TLS. Written octets are kept until a flush and then compressed with a sync flush, so that
/// whatever the session sent reaches the client whole at once: a response never waits in the
/// compressor for more. Read octets are inflated at most `maximumBurst` at a time, the rest
/// kept compressed until the session asks for more (a `read`): a small compressed input that
/// inflates to gigabytes costs no more memory than any other input.
final class IMAPDeflateHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Inflated octets passed on per read, at most (more waits for the next `read`).
    static let maximumBurst = 1 << 20
    static let chunk = 65_536

    private let compressor: ZlibCompressor
    private let decompressor: ZlibDecompressor
    /// Compressed octets read and not yet inflated.
    private var input = ByteBuffer()
    /// Octets written since the last flush, and the promises of their writes.
    private var output = ByteBuffer()
    private var promises: [EventLoopPromise<Void>] = []
    private var failed = false
    /// A read is on its way through the pipeline to inflate the rest of the input.
    private var readAsked = false

    init() throws {
        self.compressor = try ZlibCompressor(algorithm: .deflate)
        self.decompressor = try ZlibDecompressor(algorithm: .deflate)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        self.input.writeBuffer(&bytes)
        self.inflate(context: context)
    }

    /// The session wants more: what is left of the last input first; the socket is read only
    /// once all of it is inflated.
    func read(context: ChannelHandlerContext) {
        if self.input.readableBytes > 0 { self.inflate(context: context) }
        if self.input.readableBytes == 0 { context.read() }
    }

    /// Inflates what was read, up to `maximumBurst` octets, and passes them on. When input is
    /// left, a read is asked for through the channel, so that it passes the session's own
    /// backpressure first: the rest is inflated only as fast as the session takes it.
    private func inflate(context: ChannelHandlerContext) {
        guard !self.failed else { return }
        var produced = 0
        while self.input.readableBytes > 0 && produced < Self.maximumBurst {
            var out = context.channel.allocator.buffer(capacity: Self.chunk)
            var needMore = false
            let before = self.input.readableBytes
            do {
                try self.decompressor.inflate(from: &self.input, to: &out)
                needMore = true  // all the input there was is inflated
            } catch let error as CompressNIOError where error == .bufferOverflow {
                // The chunk is full; more follows.
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                needMore = true
            } catch {
                self.fail(context: context, error)
                return
            }
            produced += out.readableBytes
            if out.readableBytes > 0 { context.fireChannelRead(self.wrapInboundOut(out)) }
            if out.readableBytes == 0 && self.input.readableBytes == before && before > 0 {
                // Input zlib takes no more of and makes nothing of: octets after the end of the
                // stream (a final block). Nothing more can be understood.
                self.fail(context: context, CompressNIOError.corruptData)
                return
            }
            if needMore { break }
        }
        if self.input.readableBytes == 0 { self.input.clear() }
        if produced > 0 { context.fireChannelReadComplete() }
        if self.input.readableBytes > 0 && !self.readAsked {
            self.readAsked = true
            let channel = context.channel
            context.eventLoop.assumeIsolated().execute {
                self.readAsked = false
                channel.read()
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Passed on by `inflate` when it gave octets; a read that inflated to nothing yet
        // completes nothing.
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !self.failed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var bytes = self.unwrapOutboundIn(data)
        self.output.writeBuffer(&bytes)
        if let promise { self.promises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        guard !self.failed, self.output.readableBytes > 0 || !self.promises.isEmpty else {
            context.flush()
            return
        }
        var out = context.channel.allocator.buffer(capacity: self.compressor.maxSize(from: self.output))
        do {
            try self.compressor.deflate(from: &self.output, to: &out, flush: .sync)
        } catch {
            self.fail(context: context, error)
            return
        }
        self.output.clear()
        let promises = self.promises
        self.promises = []
        let promise: EventLoopPromise<Void>? = promises.isEmpty ? nil : context.eventLoop.makePromise()
        promise?.futureResult.whenComplete { result in
            for waiting in promises { waiting.completeWith(result) }
        }
        context.writeAndFlush(self.wrapOutboundOut(out), promise: promise)
    }

    /// Corrupt input (or a compressor that cannot go on): the connection ends; nothing more
    /// can be understood either way.
    private func fail(context: ChannelHandlerContext, _ error: Error) {
        self.failed = true
        for promise in self.promises { promise.fail(error) }
        self.promises = []
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        for promise in self.promises { promise.fail(ChannelError.ioOnClosedChannel) }
        self.promises = []
    }
}

/// Told to the session's stream when compression is in place after COMPRESS's `OK`: what it
/// read before was sent uncompressed.
struct IMAPCompressionStarted {}
