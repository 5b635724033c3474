import PetrelSystem

/// A bare TCP client socket for tests that play a hostile client: it connects (from a chosen
/// loopback address), sends what the socket takes, and tells when the server has closed the
/// connection without consuming what the server sent; or, on a thread of the test's own, holds
/// a plain SMTP dialogue with blocking calls (`sendAll`, `readReplyCode`), never on Swift's
/// cooperative pool. Not for use from two threads at once.
public final class RawSocket: @unchecked Sendable {
    public let fd: Int32

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private init(fd: Int32) {
        self.fd = fd
    }

    /// Starts connecting to 127.0.0.1:`port` (IPv4 only), from `source` when given, and returns
    /// at once; `isConnected` tells when the connection is up. The socket is non-blocking from the
    /// start: a test that blocked one of the few threads of Swift's cooperative pool would slow
    /// every test running beside it.
    /// - Parameter receiveBuffer: SO_RCVBUF before connecting: a small window fills quickly
    ///   when nothing is read.
    public static func start(port: Int, source: String? = nil, receiveBuffer: Int? = nil) throws -> RawSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        let raw = RawSocket(fd: fd)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        if let source {
            var local = Self.address(source, port: 0)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else { throw Failure(description: "bind \(source): \(String(cString: strerror(errno)))") }
        }
        var remote = Self.address("127.0.0.1", port: port)
        let started = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                posixConnect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard started == 0 || errno == EINPROGRESS || errno == EINTR else {
            throw Failure(description: "connect: \(String(cString: strerror(errno)))")
        }
        return raw
    }

    /// `start`, then waits (without blocking a thread) until the connection is up.
    public static func connect(
        port: Int,
        source: String? = nil,
        receiveBuffer: Int? = nil,
        timeout: Duration = .seconds(10)
    ) async throws -> RawSocket {
        let raw = try Self.start(port: port, source: source, receiveBuffer: receiveBuffer)
        let deadline = ContinuousClock.now + timeout
        while !raw.isConnected {
            if let error = raw.pendingError {
                throw Failure(description: "connect: \(String(cString: strerror(error)))")
            }
            guard ContinuousClock.now < deadline else { throw Failure(description: "connect: timed out") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return raw
    }

    /// The connection is up (a non-blocking connect finished without an error).
    public var isConnected: Bool {
        var entry = pollfd(fd: self.fd, events: Int16(POLLOUT), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents & Int16(POLLOUT) != 0 && self.pendingError == nil
    }

    /// The error a non-blocking connect ended with, if any.
    var pendingError: Int32? {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(self.fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0 ? nil : error
    }

    deinit { close(self.fd) }

    private static func address(_ host: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    /// Sends what the socket takes without blocking; returns the octets sent (0 when it is full
    /// or closed).
    @discardableResult
    public func sendAvailable(_ bytes: ArraySlice<UInt8>) -> Int {
        let sent = bytes.withUnsafeBytes { send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return max(sent, 0)
    }

    // MARK: - Blocking use, on a thread of the test's own

    /// Sends all of `bytes`, waiting (blocking the calling thread, so not on Swift's cooperative
    /// pool) while the socket is full; false when it failed or `timeout` passed.
    public func sendAll(_ bytes: [UInt8], timeout: Duration = .seconds(5)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var sent = 0
        while sent < bytes.count {
            let count = self.sendAvailable(bytes[sent...])
            sent += count
            if count == 0 {
                guard ContinuousClock.now < deadline, self.wait(for: Int16(POLLOUT), until: deadline) else {
                    return false
                }
            }
        }
        return true
    }

    private var received: [UInt8] = []

    /// Reads one whole SMTP reply (blocking the calling thread) and returns its code; nil when the
    /// connection ended or `timeout` passed first.
    public func readReplyCode(timeout: Duration = .seconds(5)) -> Int? {
        let deadline = ContinuousClock.now + timeout
        while true {
            while let end = self.received.firstIndex(of: 0x0A) {
                let line = Array(self.received[...end])
                self.received.removeFirst(end + 1)
                if line.count >= 4, line[3] == 0x20 { return Int(String(decoding: line.prefix(3), as: UTF8.self)) }
            }
            guard self.wait(for: Int16(POLLIN), until: deadline) else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(self.fd, &buffer, buffer.count, 0)
            if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard count > 0 else { return nil }
            self.received += buffer[..<count]
        }
    }

    private func wait(for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while ContinuousClock.now < deadline {
            var entry = pollfd(fd: self.fd, events: events, revents: 0)
            let result = poll(&entry, 1, 20)
            if result > 0 { return true }
            if result < 0 && errno != EINTR { return false }
        }
        return false
    }

    /// Whether the server has closed the connection (FIN or RST), without reading what it sent.
    public var isClosedByPeer: Bool {
        // POLLRDHUP (Linux): the peer closed its side; glibc names it only under _GNU_SOURCE.
        let readHangUp: Int16 = 0x2000
        var entry = pollfd(fd: self.fd, events: readHangUp, revents: 0)
        guard poll(&entry, 1, 0) >= 0 else { return true }
        return entry.revents & (readHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }
}

/// connect(2), out of reach of `RawSocket.connect`'s name.
private func posixConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}
