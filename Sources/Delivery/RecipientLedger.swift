import MailStore
import SMTPCore

/// How a queued recipient's state moves with each attempt's result (delivered and failed are
/// final; deferred waits for its next attempt by the retry schedule, or fails once the message is
/// too old), and when an entry next needs work. Pure: the runner writes the entry afterwards.
public struct RecipientLedger: Sendable {
    public var schedule: RetrySchedule

    public init(schedule: RetrySchedule) {
        self.schedule = schedule
    }

    /// Records one result: delivered and failed are final; deferred waits for the next attempt,
    /// unless the message is too old to keep trying.
    public func settle(
        _ recipient: inout QueueEntry.Recipient,
        _ result: DeliveryResult,
        remoteMTA: String?,
        entry: QueueEntry,
        now: Int64
    ) {
        recipient.attempts += 1
        recipient.lastAttempt = now
        recipient.remoteMTA = remoteMTA
        switch result {
        case .delivered(let reply):
            recipient.state = .delivered
            recipient.status = reply.enhancedCode?.description ?? "2.0.0"
            recipient.lastError = nil
            recipient.nextAttempt = nil
        case .failed(let reply):
            recipient.state = .failed
            recipient.status = reply.enhancedCode?.description ?? "5.0.0"
            recipient.lastError = reply.logText
            recipient.nextAttempt = nil
            recipient.notified = entry.sender == .null  // nobody to tell about a report's failure
        case .deferred(let reply):
            recipient.status = reply.enhancedCode?.description ?? "4.0.0"
            recipient.lastError = reply.logText
            if let next = self.schedule.nextAttempt(
                now: Int(now),
                arrival: Int(entry.createdAt),
                attempts: recipient.attempts
            ) {
                recipient.nextAttempt = Int64(next)
            } else {
                recipient.state = .failed
                recipient.status = "4.4.7"
                recipient.lastError = "gave up after \(now - entry.createdAt) s: " + reply.logText
                recipient.nextAttempt = nil
                recipient.notified = entry.sender == .null
            }
        }
    }

    /// When the entry next needs work: a pending recipient's next attempt, or now when a
    /// failure is still to be reported; nil when nothing is left.
    public static func nextDue(_ entry: QueueEntry) -> Int64? {
        var due: Int64?
        for recipient in entry.recipients {
            switch recipient.state {
            case .pending: due = min(due ?? .max, recipient.nextAttempt ?? 0)
            case .failed where recipient.notified == false: due = 0
            case .failed, .delivered: break
            }
        }
        return due
    }
}
