import Logging
import MailStore
import Metrics
import SMTPClient
import SMTPCore

extension QueueRunner {
    // MARK: - Logs

    /// One line per recipient and attempt: where, how (TLS), and what the server said.
    func log(
        _ entry: QueueEntry,
        indices: [Int],
        results: [DeliveryResult],
        via: String?,
        tls: TLSDetails?
    ) {
        for (index, result) in zip(indices, results) {
            var metadata: Logger.Metadata = [
                "id": "\(entry.id)",
                "from": "\(entry.sender)",
                "to": "<\(entry.recipients[index].address)>",
                "attempt": "\(entry.recipients[index].attempts + 1)",
                "delay": "\(self.clock() - entry.createdAt)s",
            ]
            if let via { metadata["relay"] = "\(via)" }
            if let tls {
                metadata["tls"] = "\(tls.version)"
                metadata["verified"] = "\(tls.verified ? "yes" : "no")"
                if let problem = tls.problem { metadata["tls_problem"] = "\(problem)" }
            }
            switch result {
            case .delivered: metadata["status"] = "sent"
            case .deferred: metadata["status"] = "deferred"
            case .failed: metadata["status"] = "bounced"
            }
            metadata["reply"] = "\(result.reply.logText)"
            self.logger.info("delivery", metadata: metadata)
            Counter(
                label: "petrel_deliveries_total",
                dimensions: [("result", metadata["status"].map { "\($0)" } ?? "")],
                factory: self.metrics
            ).increment()
        }
    }
}
