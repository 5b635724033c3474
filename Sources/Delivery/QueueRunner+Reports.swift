import MailCore
import MailStore
import SMTPCore

extension QueueRunner {
    // MARK: - Reports

    /// Sends the sender a report of the failures not yet reported (RFC 3464), and a warning
    /// once about a long delay when configured. Never to `<>`.
    func report(_ entry: inout QueueEntry, message: QueuedMessage?, now: Int64) async {
        let failed = entry.recipients.indices.filter {
            entry.recipients[$0].state == .failed && entry.recipients[$0].notified == false
        }
        guard let sender = entry.sender.mailbox else {
            // A report's own failure: there is nobody to tell.
            for index in failed { entry.recipients[index].notified = true }
            if !failed.isEmpty { await self.save(entry) }
            return
        }
        var warn = false
        if let delay = self.settings.delayNotice, entry.warned != true,
            now - entry.createdAt >= delay, entry.recipients.contains(where: { $0.state == .pending })
        {
            warn = true
        }
        guard !failed.isEmpty || warn else { return }
        let reported =
            failed.isEmpty ? entry.recipients.indices.filter { entry.recipients[$0].state == .pending } : failed
        var header = message?.header
        if header == nil {
            header = try? await QueuedMessage.open(
                entry.id,
                in: self.queue,
                timestamp: Int(now),
                signers: { _ in [] }
            ).header
        }
        let report = DeliveryStatusNotification(
            reportingMTA: self.settings.hostname,
            sender: sender.description,
            queueID: entry.id,
            arrivalDate: MessageDate(secondsSince1970: entry.createdAt),
            date: MessageDate(secondsSince1970: now),
            recipients: reported.map { index in
                let recipient = entry.recipients[index]
                return DeliveryStatusNotification.Recipient(
                    address: recipient.address.description,
                    action: recipient.state == .failed ? .failed : .delayed,
                    status: recipient.status ?? (recipient.state == .failed ? "5.0.0" : "4.0.0"),
                    remoteMTA: recipient.remoteMTA,
                    diagnostic: recipient.lastError ?? "",
                    lastAttempt: recipient.lastAttempt.map { MessageDate(secondsSince1970: $0) }
                )
            },
            originalHeader: header?.bytes ?? [],
            boundary: "=_" + self.makeID()
        )
        let id = self.makeID()
        let rendered = Array("Return-Path: <>\r\n".utf8) + report.rendered
        let reportEntry = QueueEntry(
            id: id,
            createdAt: now,
            sender: .null,
            recipients: [sender],
            smtpUTF8: !sender.isASCII,
            body: rendered.contains { $0 >= 0x80 } ? "8BITMIME" : "7BIT",
            authenticatedUser: nil
        )
        do {
            try await self.queue.add(message: rendered, entry: reportEntry)
        } catch {
            self.logger.error("cannot queue a delivery report", metadata: ["id": "\(entry.id)", "error": "\(error)"])
            return  // the recipients stay unreported: tried again next time
        }
        for index in failed { entry.recipients[index].notified = true }
        if warn { entry.warned = true }
        await self.save(entry)
        self.logger.info(
            failed.isEmpty ? "delay notice" : "bounce",
            metadata: [
                "id": "\(entry.id)", "report": "\(id)", "to": "\(sender)",
                "recipients": "\(reported.map { entry.recipients[$0].address.description }.joined(separator: ","))",
            ]
        )
        self.enqueued(id)
    }
}
