import PetrelSystem

/// Writes files that hold secrets (private keys, a configuration that may hold a relay
/// password): readable by their owner only from their first moment, whatever the umask, and
/// whole or not at all. The content goes to a new file made with mode 0600 (`O_EXCL`) under a
/// temporary name, is synced, and is put into place (renamed over what was there, or linked where
/// nothing may be replaced); writing first and narrowing the mode afterwards would leave a moment
/// in which others could read it, and writing in place could leave half a key after a crash.
public enum SecretFile {
    /// Every file and directory the process makes from now on is its owner's only (accounts with
    /// password hashes and SCRAM keys, private keys, mail): umask 077, whatever umask it was
    /// started with. The files holding secrets are also made with mode 0600 explicitly, and an
    /// existing data directory open to others gets a warning.
    public static func ownerOnlyFromNowOn() {
        umask(0o077)
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        /// `replacing: false`, and the file exists.
        public var exists = false
    }

    /// - Parameter replacing: false to never replace a file (a DKIM key): then `Failure.exists`.
    public static func write(_ bytes: [UInt8], to path: String, replacing: Bool = true) throws(Failure) {
        let temporary = path + ".tmp-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("create", temporary) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in posixWrite(fd, raw.baseAddress! + offset, raw.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let error = Self.failure("write", temporary)
                close(fd)
                unlink(temporary)
                throw error
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            let error = Self.failure("sync", temporary)
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        if replacing {
            guard rename(temporary, path) == 0 else {
                let error = Self.failure("rename", path)
                unlink(temporary)
                throw error
            }
        } else {
            // link(2) fails with EEXIST rather than replace, even when two writers race.
            guard link(temporary, path) == 0 else {
                var error = Self.failure("create", path)
                error.exists = errno == EEXIST
                unlink(temporary)
                throw error
            }
            unlink(temporary)
        }
        // The new name must survive a crash too.
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let directoryFD = open(directory.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : directory, O_RDONLY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    public static func write(_ text: String, to path: String, replacing: Bool = true) throws(Failure) {
        try self.write(Array(text.utf8), to: path, replacing: replacing)
    }

    private static func failure(_ operation: String, _ path: String) -> Failure {
        Failure(description: "cannot \(operation) \(path): \(String(cString: strerror(errno)))")
    }
}

/// write(2), out of reach of `SecretFile.write`'s name.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
