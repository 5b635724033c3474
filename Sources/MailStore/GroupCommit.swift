import NIOConcurrencyHelpers
import NIOPosix
import PetrelSystem
import Synchronization

/// Makes the messages of concurrent sessions durable together (group commit, as databases do with
/// their logs): each session's `commit` waits while the batch before it is being synced, then
/// its message is synced in the next batch with all the others that arrived meanwhile.
///
/// A batch: write the files of the messages small enough to have waited in memory, start the
/// write-back of every file before waiting for any (a hint to the kernel; not measured on its
/// own), `fdatasync` each file, publish each message (links into Maildirs, renames into the
/// queue), then `fsync` each directory that gained an entry once, for all its messages. A commit
/// returns only after its own files and directory entries are synced, so each `250` still means
/// what it did; what is shared is the cost: with fifty sessions delivering to one mailbox, one
/// directory sync instead of fifty.
///
/// One batch runs at a time, on a thread of the store's pool; a failure fails only the messages
/// it touches (a file that would not sync, a directory whose sync failed), and those are taken
/// back, their files removed, before their sessions hear of it.
final class GroupCommit: Sendable {
    /// One message's part of a batch.
    struct Job: Sendable {
        /// Gives the message's files, written and still open (a small message's are made and
        /// written here). When it throws it has removed what it made.
        var prepare: @Sendable () throws(StoreError) -> [SpoolFile]
        /// Puts the synced files where they belong and says which directories then need a sync.
        /// When it throws it has taken back what it did.
        var publish: @Sendable ([SpoolFile]) throws(StoreError) -> Publication
    }

    /// What a job's `publish` did.
    struct Publication: Sendable {
        /// Directories that gained an entry, to be synced before the commit returns.
        var directories: [String]
        /// Takes the publication back when one of those directories cannot be synced.
        var undo: @Sendable () -> Void
        /// After the sync: removes what is no longer needed (spool names).
        var done: @Sendable () -> Void
    }

    private struct Waiting {
        var job: Job
        var continuation: CheckedContinuation<StoreError?, Never>
    }

    private struct State {
        var waiting: [Waiting] = []
        var running = false
    }

    private let state = NIOLockedValueBox(State())
    private let batchCount = Atomic<Int>(0)
    private let threadPool: NIOThreadPool

    /// Batches run so far (messages ÷ batches is the sharing achieved; the tests check it).
    var batches: Int { self.batchCount.load(ordering: .relaxed) }

    init(threadPool: NIOThreadPool) {
        self.threadPool = threadPool
    }

    /// Makes the job durable, together with whatever other jobs are waiting.
    func commit(_ job: Job) async throws(StoreError) {
        let failure = await withCheckedContinuation { (continuation: CheckedContinuation<StoreError?, Never>) in
            let start = self.state.withLockedValue { state in
                state.waiting.append(Waiting(job: job, continuation: continuation))
                guard !state.running else { return false }
                state.running = true
                return true
            }
            if start { self.threadPool.submit { self.drain($0) } }
        }
        if let failure { throw failure }
    }

    /// Runs batches until no job is waiting.
    private func drain(_ work: NIOThreadPool.WorkItemState) {
        while true {
            let batch = self.state.withLockedValue { state in
                let batch = state.waiting
                state.waiting = []
                if batch.isEmpty { state.running = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            guard case .active = work else {
                // The pool is shutting down: nothing more can be made durable.
                for waiting in batch {
                    waiting.continuation.resume(returning: .io(operation: "commit", path: "", errno: ECANCELED))
                }
                continue
            }
            self.batchCount.add(1, ordering: .relaxed)
            let failures = Self.run(batch.map(\.job))
            for (waiting, failure) in zip(batch, failures) { waiting.continuation.resume(returning: failure) }
        }
    }

    /// One batch; returns each job's failure, or nil for a job that is durable.
    static func run(_ jobs: [Job]) -> [StoreError?] {
        var failures = [StoreError?](repeating: nil, count: jobs.count)
        var files = [[SpoolFile]](repeating: [], count: jobs.count)
        for (index, job) in jobs.enumerated() {
            do {
                files[index] = try job.prepare()
            } catch {
                failures[index] = error
            }
        }
        for file in files.joined() { file.startWriteBack() }
        var publications = [Publication?](repeating: nil, count: jobs.count)
        for (index, job) in jobs.enumerated() where failures[index] == nil {
            do {
                for file in files[index] { try file.finish() }
                publications[index] = try job.publish(files[index])
            } catch {
                failures[index] = error
                for file in files[index] { file.abandon() }
            }
        }
        var directoryFailures: [String: StoreError] = [:]
        var synced: Set<String> = []
        for publication in publications.compactMap(\.self) {
            for directory in publication.directories where synced.insert(directory).inserted {
                do {
                    try POSIXFile.syncDirectory(directory)
                } catch {
                    directoryFailures[directory] = error
                }
            }
        }
        for (index, publication) in publications.enumerated() {
            guard let publication else { continue }
            if let failure = publication.directories.lazy.compactMap({ directoryFailures[$0] }).first {
                publication.undo()
                for file in files[index] { file.abandon() }
                failures[index] = failure
            } else {
                publication.done()
            }
        }
        return failures
    }
}
