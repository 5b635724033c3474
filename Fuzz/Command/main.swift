import CFuzzDriver
import NIOCore
import SMTPCore

// libFuzzer target for the command line a client sends (SMTPCommandParser) and the reply lines a
// remote server sends us (SMTPReplyParser). Every input either parses or yields a precise error
// reply; a crash, a hang (libFuzzer's -timeout), a leak or an AddressSanitizer report is a bug.
// Built and run by Scripts/fuzz.sh command.

func fuzzCommand(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)

    // One command line, CRLF stripped as the framer strips it.
    switch SMTPCommandParser.parse(bytes) {
    case .success(let command):
        precondition(!command.verb.isEmpty)
        if case .mail(let path, _) = command { _ = path.description }
        if case .rcpt(let path) = command { precondition(!path.description.isEmpty) }
    case .failure(let error):
        precondition((500...599).contains(error.reply.code) || (400...499).contains(error.reply.code))
        checkRendered(error.reply)
    }

    // The same octets as a server's replies, fed in two pieces split where the first octet says.
    var parser = SMTPReplyParser()
    let split = size == 0 ? 0 : Int(bytes[0]) % (size + 1)
    do {
        let replies = try parser.feed(bytes[..<split]) + parser.feed(bytes[split...])
        for reply in replies {
            precondition((200...599).contains(reply.code))
            precondition(reply.lines.count <= SMTPReplyParser.maximumLines)
        }
    } catch {
        _ = error.description
    }
    return 0
}

/// A reply we send is CRLF-terminated lines of "code[- ]text" and nothing else: whatever the
/// client wrote, it cannot put a line break into our replies.
func checkRendered(_ reply: SMTPReply) {
    var buffer = ByteBuffer()
    reply.write(to: &buffer)
    let octets = Array(buffer.readableBytesView)
    precondition(octets.count >= 5 && octets.suffix(2) == [0x0D, 0x0A])
    var lineStart = 0
    for index in octets.indices where octets[index] == 0x0A {
        precondition(index > 0 && octets[index - 1] == 0x0D, "a bare LF in a reply")
        let line = octets[lineStart..<index - 1]
        precondition(!line.contains(0x0D), "a bare CR in a reply")
        precondition(String(decoding: line.prefix(3), as: UTF8.self) == String(reply.code))
        lineStart = index + 1
    }
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_command_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzCommand($0, size) } ?? 0 }
}
