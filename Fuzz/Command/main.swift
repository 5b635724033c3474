import CFuzzDriver
import SMTPCore

// libFuzzer target for the command line a client sends (SMTPCommandParser) and the reply lines a
// remote server sends us (SMTPReplyParser). Every input either parses or yields an error reply;
// a crash, a hang (libFuzzer's -timeout), a leak or an AddressSanitizer report is a bug.
// Built and run by Scripts/fuzz/fuzz.sh command.

func fuzzCommand(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)

    // One command line, CRLF stripped as the framer strips it.
    switch SMTPCommandParser.parse(bytes) {
    case .success(let command):
        precondition(!command.verb.isEmpty)
        if case .mail(let path, _) = command { _ = path.description }
        if case .rcpt(let path) = command { precondition(!path.description.isEmpty) }
    case .failure(let error):
        // How it renders is the session target's to check, with every other reply.
        precondition((400...599).contains(error.reply.code))
    }

    // The same octets as a server's replies: bounded, and the same whether read whole or in two
    // pieces split where the first octet says.
    let whole = replies([bytes[...]])
    for reply in whole ?? [] {
        precondition((200...599).contains(reply.code))
        precondition(reply.lines.count <= SMTPReplyParser.maximumLines)
    }
    let split = size == 0 ? 0 : Int(bytes[0]) % (size + 1)
    precondition(replies([bytes[..<split], bytes[split...]]) == whole, "replies depend on how they were read")
    return 0
}

/// The replies in `pieces` read in order by one parser; nil if the parser refused them.
func replies(_ pieces: [Slice<UnsafeBufferPointer<UInt8>>]) -> [SMTPReply]? {
    var parser = SMTPReplyParser()
    var replies: [SMTPReply] = []
    for piece in pieces {
        guard let more = try? parser.feed(piece) else { return nil }
        replies += more
    }
    return replies
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_command_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzCommand($0, size) } ?? 0 }
}
