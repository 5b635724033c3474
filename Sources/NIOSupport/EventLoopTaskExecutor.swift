import NIOCore

/// Runs a connection's task on its channel's event loop. Each command then travels from the
/// socket to the session and its reply back without a thread hop: the task is resumed on the
/// thread that read the bytes, and writes from it. Without it every command would wake a thread
/// of the global executor and every reply the event loop again, which on a busy server costs more
/// CPU than the SMTP dialogue itself (docs/performance.md). What may block (disk, fsync, SQLite)
/// still runs on its own threads; the task only awaits it.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
