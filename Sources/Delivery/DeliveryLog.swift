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
        results: [ClientSession.RecipientResult],
        via: String?,
        tls: TLSDetails?
    ) {
        for (index, result) in zip(indices, results) {
            var metadata: Logger.Metadata = [
                "id": "\(entry.id)",
                "from": "<\(entry.sender)>",
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
            case .delivered(let reply):
                metadata["status"] = "sent"
                metadata["reply"] = "\(DeliveryLog.text(reply))"
            case .deferred(let reply):
                metadata["status"] = "deferred"
                metadata["reply"] = "\(DeliveryLog.text(reply))"
            case .failed(let reply):
                metadata["status"] = "bounced"
                metadata["reply"] = "\(DeliveryLog.text(reply))"
            }
            self.logger.info("delivery", metadata: metadata)
            Counter(
                label: "petrel_deliveries_total",
                dimensions: [("result", metadata["status"].map { "\($0)" } ?? "")],
                factory: self.metrics
            ).increment()
        }
    }
}

/// How delivery results are written in logs and envelopes.
enum DeliveryLog {
    static func text(_ reply: SMTPReply) -> String {
        let code = reply.enhancedCode.map { " \($0)" } ?? ""
        return "\(reply.code)\(code) \(reply.lines.joined(separator: " "))"
    }

    static func enhancedCode(_ text: String) -> EnhancedStatusCode? {
        let parts = text.split(separator: ".").compactMap { UInt16($0) }
        guard parts.count == 3, (2...5).contains(parts[0]) else { return nil }
        return EnhancedStatusCode(UInt8(parts[0]), parts[1], parts[2])
    }
}
