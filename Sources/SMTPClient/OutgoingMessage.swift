import NIOCore

/// The octets of a message, read on demand (the queue streams it from disk).
public protocol OutgoingMessage: Sendable {
    /// Calls `write` with the message's octets, in order, one block at a time; a block is
    /// written out before the next is read.
    func stream(into write: (ByteBuffer) async throws -> Void) async throws
}
