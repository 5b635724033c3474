import NIOCore

/// One SMTP reply (RFC 5321 §4.2): a three-digit code, an optional enhanced status code
/// (RFC 2034) and one or more lines of text.
///
/// RFC 2034 §3 puts the enhanced code on every 2xx/4xx/5xx reply except the greeting and
/// the EHLO/HELO reply, whose first word must be our host name and whose following lines
/// are extension keywords.
public struct SMTPReply: Hashable, Sendable, CustomStringConvertible {
    public var code: Int
    public var enhancedCode: EnhancedStatusCode?
    public var lines: [String]

    public init(_ code: Int, _ enhancedCode: EnhancedStatusCode?, _ lines: [String]) {
        precondition((200...599).contains(code), "SMTP reply codes are 2xx to 5xx")
        precondition(!lines.isEmpty, "a reply has at least one line")
        self.code = code
        self.enhancedCode = enhancedCode
        self.lines = lines
    }

    public init(_ code: Int, _ enhancedCode: EnhancedStatusCode?, _ text: String) {
        self.init(code, enhancedCode, [text])
    }

    public var isPositive: Bool { self.code < 400 }
    public var isTransientFailure: Bool { (400..<500).contains(self.code) }
    public var isPermanentFailure: Bool { self.code >= 500 }

    /// The reply as sent on the wire, CRLF after every line. Text is cleaned so that a CR or
    /// LF inside a line (say, from an error message) can never split the reply.
    public func write(to buffer: inout ByteBuffer) {
        for (index, line) in self.lines.enumerated() {
            buffer.writeString(String(self.code))
            buffer.writeInteger(index == self.lines.count - 1 ? UInt8(ascii: " ") : UInt8(ascii: "-"))
            if let enhancedCode = self.enhancedCode {
                buffer.writeString(enhancedCode.description)
                buffer.writeInteger(UInt8(ascii: " "))
            }
            for byte in line.utf8 {
                buffer.writeInteger(byte == 0x0D || byte == 0x0A || byte == 0 ? UInt8(ascii: " ") : byte)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    /// The reply on one line, for logs, queue files and reports: `550 5.1.1 user unknown`.
    public var logText: String {
        "\(self.code) \(self.enhancedCode.map { "\($0) " } ?? "")\(self.lines.joined(separator: " "))"
    }

    public var description: String {
        var buffer = ByteBuffer()
        self.write(to: &buffer)
        return String(buffer: buffer)
    }
}
