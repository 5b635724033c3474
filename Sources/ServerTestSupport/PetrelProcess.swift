import Foundation
import NIOConcurrencyHelpers
import PetrelTestSupport
import SMTPCore
import SMTPServer

/// The `petrel` executable run as a separate process: for CLI tests, and for crash tests that
/// need a server they can kill -9.
public final class PetrelProcess: Sendable {
    /// The `petrel` binary built next to the test bundle (or `PETREL_BINARY`).
    public static var binaryPath: String {
        if let path = ProcessInfo.processInfo.environment["PETREL_BINARY"] { return path }
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("petrel").path
    }

    public struct Result: Sendable {
        public var status: Int32
        public var standardOutput: String
        public var standardError: String
    }

    /// Runs `petrel ARGUMENTS` to completion.
    public static func run(_ arguments: [String], input: String? = nil, directory: String? = nil) async throws -> Result
    {
        let process = PetrelProcess(arguments: arguments, directory: directory)
        try process.start()
        if let input {
            process.input.fileHandleForWriting.write(Data(input.utf8))
        }
        try? process.input.fileHandleForWriting.close()
        let status = await process.exit()
        return Result(status: status, standardOutput: process.standardOutput, standardError: process.standardError)
    }

    let process: Process
    let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private let collected = NIOLockedValueBox<(out: Data, err: Data)>((Data(), Data()))
    /// Left when both pipes have reached their end.
    private let readers = DispatchGroup()
    private let exitStatus = NIOLockedValueBox<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>(
        (nil, [])
    )

    public init(arguments: [String], directory: String? = nil) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardInput = self.input
        process.standardOutput = self.output
        process.standardError = self.errors
        self.process = process
    }

    public func start() throws {
        // Each pipe is read by a thread of its own with plain blocking reads until its end: no
        // readabilityHandler, whose dispatch source libdispatch on Linux may still be watching
        // when the pipe's descriptor is closed (a crash in _dispatch_event_loop_drain, seen in CI
        // with many processes at once).
        for (pipe, isOutput) in [(self.output, true), (self.errors, false)] {
            let handle = pipe.fileHandleForReading
            self.readers.enter()
            // The thread holds the process object until the pipe ends (the child exits).
            let fd = handle.fileDescriptor
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            Thread.detachNewThread {
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count < 0, errno == EINTR || errno == EAGAIN { continue }
                    guard count > 0 else { break }
                    let data = Data(buffer[..<count])
                    self.collected.withLockedValue { isOutput ? $0.out.append(data) : $0.err.append(data) }
                }
                self.readers.leave()
            }
        }
        self.process.terminationHandler = { process in
            let waiters = self.exitStatus.withLockedValue { state in
                state.status = process.terminationStatus
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: process.terminationStatus) }
        }
        try self.process.run()
    }

    public var pid: Int32 { self.process.processIdentifier }

    public var standardOutput: String { String(decoding: self.collected.withLockedValue { $0.out }, as: UTF8.self) }
    public var standardError: String { String(decoding: self.collected.withLockedValue { $0.err }, as: UTF8.self) }

    public func signal(_ number: Int32) {
        kill(self.process.processIdentifier, number)
    }

    /// Waits for the process to end; returns its exit status (or signal number).
    public func exit() async -> Int32 {
        let status = await withCheckedContinuation { continuation in
            let known = self.exitStatus.withLockedValue { state -> Int32? in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
        // What the process wrote last: the readers stop at the pipes' end.
        await withCheckedContinuation { continuation in
            self.readers.notify(queue: .global()) { continuation.resume() }
        }
        return status
    }

    /// Waits until the server logs the listening address of a kind of listener; returns the port.
    public func listeningPort(_ kind: ListenerKind = .smtp, timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for line in self.standardError.split(separator: "\n")
            where line.contains(" listening ") && line.hasSuffix("protocol=\(kind.rawValue)") {
                if let range = line.range(of: "address=") {
                    let address = line[range.upperBound...].prefix { $0 != " " }
                    if let port = address.split(separator: ":").last.flatMap({ Int($0) }) { return port }
                }
            }
            if self.exitStatus.withLockedValue({ $0.status }) != nil { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw StartFailure(log: self.standardError)
    }

    public struct StartFailure: Error, CustomStringConvertible {
        public let log: String
        public var description: String { "petrel did not start listening:\n\(self.log)" }
    }
}
