// What the command-line tools share: how they fail, and how they read standard input.
import PetrelSystem

/// A tool's failure, said to the operator as `Error: <description>` (exit status 1).
public struct ToolError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A tool's failure with an exit status of its own (sendmail's 64, 65 and 75, `petrel resolve`'s
/// 1 and 2); its message, if any, is already printed.
public struct ToolExit: Error {
    public let status: Int32
    public init(_ status: Int32) { self.status = status }
}

/// `Error: message` on standard error.
public func printError(_ message: String) {
    let line = Array("Error: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// `Warning: message` on standard error.
public func printWarning(_ message: String) {
    let line = Array("Warning: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Standard input in pieces of up to 64 KiB, a file saved with LF line ends (a Maildir file) read
/// as CRLF, as the message was or will be on the wire.
public func readStandardInput(_ body: ([UInt8]) -> Void) {
    var buffer = [UInt8](repeating: 0, count: 65_536)
    var previous: UInt8 = 0
    while true {
        let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(count + count / 32)
        for byte in buffer[0..<count] {
            if byte == 0x0A, previous != 0x0D { chunk.append(0x0D) }
            chunk.append(byte)
            previous = byte
        }
        body(chunk)
    }
}

/// The first line of standard input, without its line break.
func readLineFromStandardInput() -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while true {
        let count = read(STDIN_FILENO, &byte, 1)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 || byte == 0x0A { break }
        bytes.append(byte)
    }
    if bytes.last == 0x0D { bytes.removeLast() }
    return String(decoding: bytes, as: UTF8.self)
}

/// 45s, 12m, 3h, 2d.
func formatAge(_ seconds: Int64) -> String {
    switch seconds {
    case ..<60: return "\(max(seconds, 0))s"
    case ..<3600: return "\(seconds / 60)m"
    case ..<86_400: return "\(seconds / 3600)h"
    default: return "\(seconds / 86_400)d"
    }
}

/// A wrong argument, said with the command's usage (exit status 64).
public struct ToolUsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The working directory, which relative paths on the command line start from.
public func currentDirectory() -> String {
    guard let path = getcwd(nil, 0) else { return "." }
    defer { free(path) }
    return String(cString: path)
}
