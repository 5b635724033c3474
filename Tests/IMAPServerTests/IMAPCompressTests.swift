import CompressNIO
import NIOCore
import Testing

@testable import IMAPServer

/// COMPRESS=DEFLATE (RFC 4978) through the real handlers: raw DEFLATE both ways from the octet
/// after the `OK`, every response flushed whole, plaintext sent behind COMPRESS dropped, and an
/// input that inflates to far more than it weighs read a bounded burst at a time.
@Suite struct IMAPCompressTests {
    /// A client's side of the compression.
    final class Peer {
        let compressor: ZlibCompressor
        let decompressor: ZlibDecompressor
        var text = ""

        init() throws {
            self.compressor = try ZlibCompressor(algorithm: .deflate)
            self.decompressor = try ZlibDecompressor(algorithm: .deflate)
        }

        func compress(_ text: String) throws -> [UInt8] {
            var input = ByteBuffer(string: text)
            var out = ByteBuffer()
            out.reserveCapacity(self.compressor.maxSize(from: input))
            try self.compressor.deflate(from: &input, to: &out, flush: .sync)
            return Array(out.readableBytesView)
        }

        /// Inflates what the server wrote until `marker` appears (or time runs out).
        func read(
            _ harness: IMAPHarness,
            until marker: String,
            within limit: Duration = .seconds(10)
        ) async throws
            -> String
        {
            let deadline = ContinuousClock.now + limit
            while !self.text.contains(marker) && ContinuousClock.now < deadline {
                guard var buffer = try await harness.channel.readOutbound(as: ByteBuffer.self) else {
                    try await Task.sleep(for: .milliseconds(2))
                    continue
                }
                while buffer.readableBytes > 0 {
                    var out = ByteBuffer()
                    out.reserveCapacity(65_536)
                    do {
                        try self.decompressor.inflate(from: &buffer, to: &out)
                    } catch let error as CompressNIOError where error == .bufferOverflow {}
                    self.text += String(buffer: out)
                }
            }
            return self.text
        }
    }

    @Test func aSessionGoesOnCompressedAndPlaintextBehindCompressIsDropped() async throws {
        let harness = try await IMAPHarness()
        try await harness.login()
        // A command pipelined behind COMPRESS, uncompressed, must never run.
        try await harness.send(Array("z COMPRESS DEFLATE\r\nq LOGOUT\r\n".utf8))
        #expect(await harness.line() == "z OK DEFLATE active")
        let peer = try Peer()
        try await harness.send(try peer.compress("a SELECT INBOX\r\n"))
        let selected = try await peer.read(harness, until: "a OK")
        #expect(selected.contains("* 3 EXISTS") && selected.hasSuffix("a OK [READ-WRITE] SELECT done\r\n"))
        #expect(!selected.contains("q OK"))
        // Many small commands, each answered in full before the next is sent.
        for number in 0..<20 {
            try await harness.send(try peer.compress("n\(number) NOOP\r\n"))
            #expect(try await peer.read(harness, until: "n\(number) OK").hasSuffix("n\(number) OK NOOP done\r\n"))
        }
        try await harness.send(try peer.compress("b FETCH 1:3 (BODY.PEEK[])\r\n"))
        #expect(try await peer.read(harness, until: "b OK").contains("Hello number 3"))
        // The compressor was put in its place, below the silence timer (so its BYE is
        // compressed too): the handler is there, and adding it found the timer.
        _ = try await harness.channel.pipeline.handler(type: IMAPDeflateHandler.self).get()
        try await harness.send(try peer.compress("c COMPRESS DEFLATE\r\n"))
        #expect(
            try await peer.read(harness, until: "c NO").hasSuffix("c NO [COMPRESSIONACTIVE] DEFLATE is on already\r\n")
        )
        await harness.close()
    }

    /// A few kilobytes that inflate to 16 MiB (sixteen times the command limit) without a line
    /// end: the framer's line limit answers it, and the handler never inflated more than a
    /// burst past what the session read.
    @Test func anInflationBombIsReadABurstAtATime() async throws {
        let harness = try await IMAPHarness()
        try await harness.login()
        try await harness.send(Array("z COMPRESS DEFLATE\r\n".utf8))
        #expect(await harness.line() == "z OK DEFLATE active")
        let peer = try Peer()
        var bomb: [UInt8] = []
        let block = String(repeating: "a", count: 1 << 20)
        for _ in 0..<16 { bomb += try peer.compress(block) }
        bomb += try peer.compress("\r\nb NOOP\r\n")
        #expect(bomb.count < 200_000)
        try await harness.send(bomb)
        // Generous: a debug build on a busy machine frames 16 MiB slowly (23 s for 64 MiB seen).
        let answer = try await peer.read(harness, until: "b OK", within: .seconds(120))
        #expect(answer.contains("BAD [TOOBIG]") && answer.hasSuffix("b OK NOOP done\r\n"), "\(answer.prefix(80))")
        await harness.close()
    }

    /// Octets after the end of the stream (a final block): zlib takes them no more, so the
    /// connection ends, never a loop that reads nothing and spins.
    @Test func octetsAfterTheStreamEndCloseTheConnection() async throws {
        let harness = try await IMAPHarness()
        try await harness.login()
        try await harness.send(Array("z COMPRESS DEFLATE\r\n".utf8))
        #expect(await harness.line() == "z OK DEFLATE active")
        let peer = try Peer()
        var input = ByteBuffer(string: "a NOOP\r\n")
        var final = ByteBuffer()
        final.reserveCapacity(peer.compressor.maxSize(from: input) + 16)
        try peer.compressor.deflate(from: &input, to: &final, flush: .finish)
        try await harness.send(Array(final.readableBytesView) + [0x42, 0x42])
        let deadline = ContinuousClock.now + .seconds(5)
        while harness.channel.isActive && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(!harness.channel.isActive, "closed")
        await harness.close()
    }
}
