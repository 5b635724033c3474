import CPetrelSystem
import NIOCore
import PetrelSystem

/// One file in `incoming/`, written in blocks from the thread pool. Not thread-safe by itself:
/// its owner (`IncomingMessageFile`, an actor) never uses it from two places at once.
final class SpoolFile: @unchecked Sendable {
    let path: String
    let unixLineEnds: Bool
    private var fd: Int32?
    private var converter = LineEndingConverter()
    private(set) var size = 0

    init(path: String, unixLineEnds: Bool) throws(StoreError) {
        self.path = path
        self.unixLineEnds = unixLineEnds
        self.fd = try POSIXFile.createExclusive(path)
    }

    func write(_ block: ByteBuffer, final: Bool) throws(StoreError) {
        guard let fd = self.fd else { throw StoreError.io(operation: "write", path: self.path, errno: EBADF) }
        var bytes = block
        if self.unixLineEnds {
            bytes = ByteBuffer()
            self.converter.convert(block, into: &bytes)
            if final { self.converter.finish(into: &bytes) }
        }
        self.size += bytes.readableBytes
        try bytes.withUnsafeReadableBytes { raw throws(StoreError) in try POSIXFile.writeAll(fd, raw, path: self.path) }
    }

    /// Puts `header` in front of what was written: a new file gets the header and then the old
    /// content (copied in the kernel), and takes the old one's name.
    func prepend(_ header: ByteBuffer) throws(StoreError) {
        guard let old = self.fd else { throw StoreError.io(operation: "write", path: self.path, errno: EBADF) }
        var bytes = header
        if self.unixLineEnds {
            var converter = LineEndingConverter()
            bytes = ByteBuffer()
            converter.convert(header, into: &bytes)
            converter.finish(into: &bytes)
        }
        let temporary = self.path + ".h"
        let fd = try POSIXFile.createExclusive(temporary)
        do {
            try bytes.withUnsafeReadableBytes { raw throws(StoreError) in
                try POSIXFile.writeAll(fd, raw, path: temporary)
            }
            try POSIXFile.appendContents(of: self.path, to: fd, path: temporary)
            try POSIXFile.rename(temporary, self.path)
        } catch {
            _ = try? POSIXFile.closeFile(fd, path: temporary)
            POSIXFile.remove(temporary)
            throw error
        }
        _ = try? POSIXFile.closeFile(old, path: self.path)
        self.fd = fd
        self.size += bytes.readableBytes
    }

    /// Starts writing the file's data back, without waiting: a batch starts all its files this
    /// way before syncing each, so that their write-back overlaps. Makes nothing durable.
    func startWriteBack() {
        if let fd = self.fd { _ = petrel_start_write_back(fd) }
    }

    /// Syncs and closes the file.
    func finish() throws(StoreError) {
        guard let fd = self.fd else { throw StoreError.io(operation: "sync", path: self.path, errno: EBADF) }
        self.fd = nil
        do {
            try POSIXFile.syncData(fd, path: self.path)
        } catch {
            _ = try? POSIXFile.closeFile(fd, path: self.path)
            throw error
        }
        try POSIXFile.closeFile(fd, path: self.path)
    }

    /// Closes (if open) and removes the file.
    func abandon() {
        if let fd = self.fd { _ = try? POSIXFile.closeFile(fd, path: self.path) }
        self.fd = nil
        POSIXFile.remove(self.path)
    }
}
