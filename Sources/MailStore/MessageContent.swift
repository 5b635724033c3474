/// A stored message's octets (CRLF line ends), read in blocks: what the queue hands out and a
/// mailbox engine takes in, whatever either keeps them in. Used by one task at a time; closed
/// when done.
public protocol MessageContent: Sendable {
    var size: Int { get }
    /// Up to `count` octets from `offset`; fewer at the end, none past it.
    func read(at offset: Int, count: Int) async throws -> [UInt8]
    func close()
}
