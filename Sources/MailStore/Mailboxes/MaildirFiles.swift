import MailCore
import NIOCore
import PetrelSystem

/// The few file operations the mailbox side needs beyond `POSIXFile`.
enum MaildirFiles {
    /// A directory's modification time, in nanoseconds; nil when it cannot be read.
    static func modificationTime(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Glibc)
        return Self.nanoseconds(seconds: Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec))
        #else
        return Self.nanoseconds(seconds: Int64(info.st_mtimespec.tv_sec), Int64(info.st_mtimespec.tv_nsec))
        #endif
    }

    /// A file time in nanoseconds since 1970, the seconds clamped to 0 ... 9e9 (the year 2255):
    /// whatever time a user gives a directory of their Maildir (`touch -d 2300-01-01 cur`,
    /// `touch -d @-9000000000 cur`), the product and every difference with now stay in range.
    static func nanoseconds(seconds: Int64, _ nanoseconds: Int64) -> Int64 {
        min(max(seconds, 0), 9_000_000_000) * 1_000_000_000 + min(max(nanoseconds, 0), 999_999_999)
    }

    /// A directory itself, not a symbolic link to one: a link a user put in their Maildir must
    /// not lead DELETE or LIST outside it.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// A regular file's size (not through a link), or nil.
    static func fileSize(_ path: String) -> UInt64? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(info.st_size)
    }

    /// Whether anything (a link too) has this name.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// A file's contents, or the errno that stopped the read.
    static func read(_ path: String) -> Result<[UInt8], StoreError> {
        // Not through a symbolic link: FETCH serves message files, never what a link points at.
        // Nor a FIFO someone left in the Maildir: opened without waiting for a writer, refused.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return .failure(StoreError(operation: "open", path: path, errno: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(StoreError(operation: "stat", path: path, errno: errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return .failure(StoreError(operation: "read (not a regular file)", path: path, errno: EINVAL))
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw in
                PetrelSystem.read(fd, raw.baseAddress! + filled, raw.count - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(StoreError(operation: "read", path: path, errno: errno))
            }
            if count == 0 { break }
            filled += count
        }
        bytes.removeLast(bytes.count - filled)
        return .success(bytes)
    }

    /// What the index keeps of a message file, computed once, when the file is first seen.
    struct Description {
        /// The size with CRLF line ends (RFC822.SIZE of a file written with LF).
        var size: Int
        /// The modification time in seconds (the internal date).
        var date: Int64
        /// The MIME structure over the CRLF form.
        var structure: MIMEPart
        /// PREVIEW's text.
        var preview: String

        /// The top-level fields the structure keeps (From, To, Subject, Date, Content-*...), as
        /// they came: SEARCH reads these instead of the file.
        var keptHeader: [UInt8] { self.structure.header.fields.flatMap(\.raw) }
    }

    static func describe(_ path: String) -> Description? {
        guard case .success(let bytes) = Self.read(path) else { return nil }
        let served = Self.networkLineEnds(bytes)
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Glibc)
        let date = Int64(info.st_mtim.tv_sec)
        #else
        let date = Int64(info.st_mtimespec.tv_sec)
        #endif
        let structure = MIMEPart(message: served)
        return Description(
            size: served.count,
            date: date,
            structure: structure,
            preview: MessagePreview.make(message: served, structure: structure)
        )
    }

    /// Sets a file's modification time (APPEND's internal date, which Dovecot reads there too).
    static func setModificationTime(_ path: String, seconds: Int64) {
        var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    /// Removes a directory and what it holds (a deleted folder: its files and its tmp, new, cur).
    static func removeTree(_ path: String) throws(StoreError) {
        for name in try POSIXFile.listDirectory(path) {
            let child = path + "/" + name
            if Self.isDirectory(child) {
                try Self.removeTree(child)
            } else if unlink(child) != 0 && errno != ENOENT {
                throw StoreError(operation: "unlink", path: child, errno: errno)
            }
        }
        if rmdir(path) != 0 && errno != ENOENT { throw StoreError(operation: "rmdir", path: path, errno: errno) }
    }

    /// CRLF as LF (a Maildir holds LF line ends, as mutt and Dovecot expect), as the spool
    /// files of received mail are written.
    static func unixLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        var converter = LineEndingConverter()
        var out = ByteBuffer()
        converter.convert(ByteBuffer(bytes: bytes), into: &out)
        converter.finish(into: &out)
        return Array(out.readableBytesView)
    }

    /// LF as CRLF (what IMAP serves); a CRLF already there stays one.
    static func networkLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 40)
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == 0x0A && previous != 0x0D { out.append(0x0D) }
            out.append(byte)
            previous = byte
        }
        return out
    }
}
