import NIOCore

/// Rewrites CRLF as LF, streaming. A CR at the end of one piece is held until the next shows
/// whether an LF follows it. A CR not followed by LF is kept as it is (the server never accepts
/// one, but the store does not depend on that).
struct LineEndingConverter: Sendable {
    private var heldCR = false

    mutating func convert(_ input: ByteBuffer, into output: inout ByteBuffer) {
        let view = input.readableBytesView
        guard !view.isEmpty else { return }
        var start = view.startIndex
        if self.heldCR {
            self.heldCR = false
            if view.first != 0x0A { output.writeInteger(UInt8(0x0D)) }
        }
        var index = start
        while let cr = view[index...].firstIndex(of: 0x0D) {
            let next = cr + 1
            if next == view.endIndex {
                output.writeBytes(view[start..<cr])
                self.heldCR = true
                return
            }
            if view[next] == 0x0A {
                output.writeBytes(view[start..<cr])
                start = next
            }
            index = next
        }
        output.writeBytes(view[start...])
    }

    mutating func finish(into output: inout ByteBuffer) {
        if self.heldCR {
            output.writeInteger(UInt8(0x0D))
            self.heldCR = false
        }
    }
}
