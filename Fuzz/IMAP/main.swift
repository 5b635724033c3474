import CFuzzDriver
import IMAPCore
import NIOCore

// libFuzzer target for what an IMAP client sends: the framer (lines, literals, limits) and the
// command parser over every command it frames. Every input frames and parses or is refused; a
// crash, a hang (libFuzzer's -timeout), a leak or an AddressSanitizer report is a bug, and so is
// framing that depends on how the input was cut. Built and run by Scripts/fuzz/fuzz.sh imap.

func fuzzIMAP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = outcomes([bytes[...]])
    let split = size == 0 ? 0 : Int(bytes[0]) % (size + 1)
    precondition(outcomes([bytes[..<split], bytes[split...]]) == whole, "framing depends on how the input was cut")
    return 0
}

/// What a session would see: each command parsed (or its error), each refusal, in order.
func outcomes(_ pieces: [ArraySlice<UInt8>]) -> [String] {
    var limits = IMAPLimits()
    limits.lineLength = 512
    limits.inlineLiteralSize = 256
    limits.commandSize = 2048
    limits.literals = 8
    var framer = IMAPInboundFramer(limits: limits)
    var result: [String] = []
    var streamed = 0
    for piece in pieces {
        framer.append(ByteBuffer(bytes: piece))
        while let event = framer.next() {
            switch event {
            case .command(let text):
                precondition(text.size <= limits.commandSize)
                switch IMAPCommandParser.parse(text) {
                case .success(let command): result.append("ok \(command.tag) \(command.command)")
                case .failure(let error): result.append("bad \(error.tag ?? "*") \(error.text)")
                }
                framer.resume(text.parts.count == 1 && streamed % 3 == 2 ? .line : .commands)
            case .literal(let announcement):
                // Small ones in memory, a few streamed, the rest refused.
                if framer.fitsInMemory(announcement), announcement.size < 64 {
                    framer.decide(.inMemory)
                } else if announcement.size < 4096 {
                    framer.decide(.stream)
                } else {
                    framer.decide(.refuse)
                }
            case .literalData(let data): streamed += data.readableBytes
            case .literalEnd: result.append("streamed \(streamed)")
            case .commandTooLong(let start):
                precondition(start.readableBytes <= 64)
                result.append("too long")
            case .unframeable: result.append("unframeable")
            case .line(let line):
                result.append("line \(line?.readableBytes ?? -1)")
                framer.resume(.commands)
            }
        }
    }
    return result
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_imap_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzIMAP($0, size) } ?? 0 }
}
