import Foundation
import MailStore
import PetrelConfiguration
import PetrelSystem

/// `petrel queue`: the outbound queue, looked at on disk and acted on through the running server
/// when there is one (it holds the data directory's lock), else directly under the lock.
public enum QueueTool {
    /// One block a message: id, age, size and sender, then each recipient with its state.
    public static func list(_ configuration: Configuration) throws {
        let entries = try OutboundQueue(directory: configuration.files.queue).entries()
        guard !entries.isEmpty else {
            print("the queue is empty")
            return
        }
        let now = Int64(time(nil))
        for entry in entries {
            let sender = entry.sender.mailbox?.description ?? "<>"
            print("\(entry.id)  \(formatAge(now - entry.createdAt))  \(entry.size) octets  \(sender)")
            for recipient in entry.recipients {
                print("  " + describe(recipient, now: now))
            }
        }
    }

    /// One message's envelope, recipients and header section (its first 64 KiB).
    public static func show(_ configuration: Configuration, id: String) throws {
        let queue = OutboundQueue(directory: configuration.files.queue)
        guard QueueEntry.isValidID(id), let entry = try? queue.entry(id) else {
            throw ToolError("\(id) is not in the queue (see `petrel queue list`)")
        }
        let now = Int64(time(nil))
        print("id: \(entry.id)")
        print("arrived: \(formatAge(now - entry.createdAt)) ago")
        print("sender: \(entry.sender)")
        if let user = entry.authenticatedUser { print("submitted by: \(user)") }
        print(
            "size: \(entry.size) octets\(entry.smtpUTF8 ? ", SMTPUTF8" : "")\(entry.body.map { ", \($0)" } ?? "")"
        )
        print("recipients:")
        for recipient in entry.recipients { print("  " + describe(recipient, now: now)) }
        print("")
        // The header section, as queued (its first 64 KiB).
        let fd = open(queue.messagePath(entry.id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 65_536)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return }
        let text = String(decoding: bytes[..<count], as: UTF8.self)
        let header = text.components(separatedBy: "\r\n\r\n").first ?? text
        print(header.replacingOccurrences(of: "\r\n", with: "\n"))
    }

    /// `bob@remote.test  pending  3 attempts  next in 12m  last: 451 4.3.0 try later`.
    static func describe(_ recipient: QueueEntry.Recipient, now: Int64) -> String {
        var parts = [recipient.address.description, recipient.state.rawValue]
        if recipient.attempts > 0 { parts.append("\(recipient.attempts) attempt\(recipient.attempts == 1 ? "" : "s")") }
        if recipient.state == .pending {
            let next = recipient.nextAttempt ?? now
            parts.append(next <= now ? "next: now" : "next in \(formatAge(next - now))")
        }
        if let error = recipient.lastError { parts.append("last: \(error)") }
        return parts.joined(separator: "  ")
    }

    /// Acts on the queue: through the running server when there is one (its lock is held), else
    /// directly under the lock.
    public static func act(_ request: QueueRequest, id: String, configuration: Configuration) async throws {
        let queue = OutboundQueue(directory: configuration.files.queue)
        guard id == "all" || QueueEntry.isValidID(id) else {
            throw ToolError("'\(id)' is not a queue id (see `petrel queue list`)")
        }
        if id != "all", (try? queue.entry(id)) == nil {
            throw ToolError("\(id) is not in the queue (see `petrel queue list`)")
        }
        let lock: DataDirectoryLock
        do {
            lock = try DataDirectoryLock(dataDirectory: configuration.dataDirectory)
        } catch let failure as DataDirectoryLock.Failure where failure.held {
            // A server runs: ask it, and wait for it to say done (it looks every second).
            let path = try queue.request(request, id: id)
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(100))
                if access(path, F_OK) != 0 {
                    print("\(request.rawValue): done (\(id))")
                    return
                }
            }
            print("\(request.rawValue): requested (\(id)); the server has not taken it up yet (is it on hold?)")
            return
        }
        defer { withExtendedLifetime(lock) {} }
        let ids = id == "all" ? try queue.entries().map(\.id) : [id]
        for id in ids {
            guard try queue.perform(request, id: id, now: Int64(time(nil))) else {
                throw ToolError("\(id) is not in the queue (see `petrel queue list`)")
            }
        }
        let note = request == .delete ? "" : " (the server acts on it when it next runs)"
        print("\(request.rawValue): done (\(id))\(note)")
    }
}
