import MailStore
import PetrelSystem

/// An exclusive lock on the data directory (`DATA_DIR/petrel.lock`, flock(2)), held while the
/// server runs. Two servers on one data directory would each clean up the other's unfinished
/// messages at start-up; the lock makes the second one stop with a clear error instead. The
/// kernel drops it when the process dies, even by kill -9.
public final class DataDirectoryLock: Sendable {
    private let fd: Int32
    public let path: String

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        /// Another process (a running server) holds the lock.
        public var held = false
    }

    public init(dataDirectory: String) throws {
        self.path = DataDirectory(dataDirectory).lock
        let fd = open(self.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw Failure(description: "cannot open \(self.path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw Failure(
                    description:
                        "another petrel server is already using \(dataDirectory); stop it or choose another data_dir",
                    held: true
                )
            }
            throw Failure(description: "cannot lock \(self.path): \(String(cString: strerror(code)))")
        }
        self.fd = fd
    }

    deinit {
        close(self.fd)
    }
}
