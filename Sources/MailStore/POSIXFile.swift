import PetrelSystem

/// Thin, blocking wrappers over the system calls the store needs, each turning errno into a
/// `StoreError`. They run on the store's thread pool, never on an event loop.
enum POSIXFile {
    static func createExclusive(_ path: String, mode: mode_t = 0o600) throws(StoreError) -> Int32 {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw StoreError(operation: "create", path: path, errno: errno) }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(StoreError) {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw StoreError(operation: "write", path: path, errno: errno)
            }
            offset += written
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(StoreError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in write(fd, raw.baseAddress! + offset, raw.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw StoreError(operation: "write", path: path, errno: errno)
            }
            offset += written
        }
    }

    /// Appends the whole content of the file at `source` to `fd`: in the kernel (sendfile)
    /// where it can, else through a buffer.
    static func appendContents(of source: String, to fd: Int32, path: String) throws(StoreError) {
        let input = retryingEINTR { open(source, O_RDONLY | O_CLOEXEC) }
        guard input >= 0 else { throw StoreError(operation: "open", path: source, errno: errno) }
        defer { close(input) }
        #if canImport(Glibc)
        while true {
            let copied = sendfile(fd, input, nil, 1 << 30)
            if copied > 0 { continue }
            if copied == 0 { return }
            if errno == EINTR { continue }
            guard errno == EINVAL || errno == ENOSYS else {
                throw StoreError(operation: "copy", path: path, errno: errno)
            }
            break  // not possible between these files: copy by hand from where it stopped
        }
        #endif
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress!, $0.count) }
            if count == 0 { return }
            if count < 0 {
                if errno == EINTR { continue }
                throw StoreError(operation: "read", path: source, errno: errno)
            }
            try Self.writeAll(fd, Array(buffer[0..<count]), path: path)
        }
    }

    /// A new file with these bytes, synced and closed; nothing is left behind when it fails.
    static func writeSynced(_ path: String, _ bytes: [UInt8]) throws(StoreError) {
        let fd = try Self.createExclusive(path)
        do {
            try Self.writeAll(fd, bytes, path: path)
            try Self.syncData(fd, path: path)
            try Self.closeFile(fd, path: path)
        } catch {
            _ = try? Self.closeFile(fd, path: path)
            Self.remove(path)
            throw error
        }
    }

    static func rename(_ source: String, _ destination: String) throws(StoreError) {
        #if canImport(Glibc)
        let result = Glibc.rename(source, destination)
        #else
        let result = Darwin.rename(source, destination)
        #endif
        guard result == 0 else {
            throw StoreError(operation: "rename", path: destination, errno: errno)
        }
    }

    /// Data and the metadata needed to read it back (the size) reach the disk.
    static func syncData(_ fd: Int32, path: String) throws(StoreError) {
        #if canImport(Darwin)
        let result = fcntl(fd, F_FULLFSYNC)
        #else
        let result = fdatasync(fd)
        #endif
        guard result == 0 else { throw StoreError(operation: "fsync", path: path, errno: errno) }
    }

    /// Makes the entries of a directory (a link or rename into it) durable.
    static func syncDirectory(_ path: String) throws(StoreError) {
        let fd = retryingEINTR { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw StoreError(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError(operation: "fsync", path: path, errno: errno) }
    }

    static func closeFile(_ fd: Int32, path: String) throws(StoreError) {
        // close() may report a delayed write error (NFS); after fsync it is rare but real.
        guard close(fd) == 0 || errno == EINTR else { throw StoreError(operation: "close", path: path, errno: errno) }
    }

    /// Creates a directory if missing. Returns true when it was created (its parent then needs a sync).
    @discardableResult
    static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws(StoreError) -> Bool {
        if mkdir(path, mode) == 0 { return true }
        let code = errno
        var info = stat()
        if code == EEXIST, stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { return false }
        throw StoreError(operation: "mkdir", path: path, errno: code)
    }

    static func link(_ source: String, _ destination: String) throws(StoreError) {
        #if canImport(Glibc)
        let result = Glibc.link(source, destination)
        #else
        let result = Darwin.link(source, destination)
        #endif
        guard result == 0 else { throw StoreError(operation: "link", path: destination, errno: errno) }
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    static func deviceID(_ path: String) throws(StoreError) -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StoreError(operation: "stat", path: path, errno: errno) }
        return UInt64(info.st_dev)
    }

    /// Names in a directory, without "." and "..".
    static func listDirectory(_ path: String) throws(StoreError) -> [String] {
        guard let directory = opendir(path) else { throw StoreError(operation: "opendir", path: path, errno: errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func retryingEINTR(_ body: () -> Int32) -> Int32 {
        while true {
            let result = body()
            if result >= 0 || errno != EINTR { return result }
        }
    }
}
