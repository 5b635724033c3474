import Crypto
import MailCore

/// Header canonicalization (RFC 6376 §3.4.1, §3.4.2).
enum HeaderCanonicalizer {
    static func canonicalize(_ raw: [UInt8], _ method: DKIMSignature.Canonicalization) -> [UInt8] {
        switch method {
        case .simple:
            return raw
        case .relaxed:
            let colon = raw.firstIndex(of: 0x3A) ?? raw.endIndex
            var output: [UInt8] = []
            output.reserveCapacity(raw.count)
            // The name in lower case, without white space before the colon.
            var name = raw[..<colon]
            while let last = name.last, last == 0x20 || last == 0x09 { name = name.dropLast() }
            output += name.map(asciiLowercased)
            output.append(0x3A)
            // The value unfolded, runs of white space made one space, none at either end.
            var pendingSpace = false
            var wroteValue = false
            for byte in raw[min(colon + 1, raw.endIndex)...] {
                switch byte {
                case 0x0D, 0x0A:
                    continue
                case 0x20, 0x09:
                    pendingSpace = true
                default:
                    if pendingSpace && wroteValue { output.append(0x20) }
                    pendingSpace = false
                    wroteValue = true
                    output.append(byte)
                }
            }
            output += [0x0D, 0x0A]
            return output
        }
    }
}

/// Canonicalizes a body as it streams by (RFC 6376 §3.4.3, §3.4.4) and hashes the result with
/// SHA-256, stopping after `length` octets when l= asks. Memory use is constant: empty lines and
/// white space are counted, not kept, until something shows they are not at the end.
public struct BodyHasher: Sendable {
    public let request: BodyHashRequest
    private var hash = SHA256()
    /// Canonical octets produced (also past `length`: l= that is larger than the body fails).
    public private(set) var canonicalLength = 0
    private var pendingEmptyLines = 0
    private var lineHasContent = false
    private var pendingSpace = false
    private var pendingCR = false

    public init(_ request: BodyHashRequest) {
        self.request = request
    }

    public mutating func update(_ bytes: some Sequence<UInt8>) {
        // Through a buffer pointer: iterating a generic sequence here, unspecialized across the
        // module boundary, cost an allocation per octet (bench/micro).
        let done: Void? = bytes.withContiguousStorageIfAvailable { self.update(buffer: $0) }
        if done == nil {
            Array(bytes).withUnsafeBufferPointer { self.update(buffer: $0) }
        }
    }

    private mutating func update(buffer: UnsafeBufferPointer<UInt8>) {
        var output: [UInt8] = []
        output.reserveCapacity(buffer.count + 2)
        for byte in buffer {
            self.consume(byte, into: &output)
        }
        self.emit(output)
    }

    private mutating func consume(_ byte: UInt8, into output: inout [UInt8]) {
        if self.pendingCR {
            self.pendingCR = false
            if byte == 0x0A {
                self.endLine(into: &output)
                return
            }
            self.content(0x0D, into: &output)  // a CR that ends no line is content
        }
        switch byte {
        case 0x0D:
            self.pendingCR = true
        case 0x0A:
            self.endLine(into: &output)  // a bare LF ends a line too: the lines are what is signed
        case 0x20, 0x09:
            // ("where" would bind to 0x09 alone.)
            if self.request.canonicalization == .relaxed {
                self.pendingSpace = true
            } else {
                self.content(byte, into: &output)
            }
        default:
            self.content(byte, into: &output)
        }
    }

    private mutating func content(_ byte: UInt8, into output: inout [UInt8]) {
        if !self.lineHasContent {
            for _ in 0..<self.pendingEmptyLines {
                output.append(0x0D)
                output.append(0x0A)
            }
            self.pendingEmptyLines = 0
            self.lineHasContent = true
        }
        if self.pendingSpace {
            output.append(0x20)
            self.pendingSpace = false
        }
        output.append(byte)
    }

    private mutating func endLine(into output: inout [UInt8]) {
        self.pendingSpace = false  // relaxed: white space at the end of a line goes
        if self.lineHasContent {
            output.append(0x0D)
            output.append(0x0A)
            self.lineHasContent = false
        } else {
            self.pendingEmptyLines += 1  // only kept if a line with content follows
        }
    }

    private mutating func emit(_ output: [UInt8]) {
        guard !output.isEmpty else { return }
        if let length = self.request.length {
            let room = max(0, length - self.canonicalLength)
            if room > 0 { self.hash.update(data: output.prefix(room)) }
        } else {
            self.hash.update(data: output)
        }
        self.canonicalLength += output.count
    }

    /// The body hash, after the last octet. Simple canonicalization makes an empty body one CRLF;
    /// relaxed leaves it empty; both end a last line that lacks its CRLF with one.
    public mutating func finalize() -> [UInt8] {
        var output: [UInt8] = []
        if self.pendingCR {
            self.pendingCR = false
            self.content(0x0D, into: &output)
        }
        if self.lineHasContent {
            output += [0x0D, 0x0A]
            self.lineHasContent = false
        }
        if self.request.canonicalization == .simple, self.canonicalLength == 0, output.isEmpty {
            output = [0x0D, 0x0A]
        }
        self.emit(output)
        return Array(self.hash.finalize())
    }
}
