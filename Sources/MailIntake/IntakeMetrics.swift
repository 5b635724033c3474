import Metrics

/// What the inbound pipeline counts (connections, messages, refused recipients, authentication
/// results) and times (store commits), through swift-metrics into the factory the server gives:
/// its own Prometheus registry, so that servers in one process (tests) keep theirs apart.
public struct IntakeMetrics: Sendable {
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    public func connection(listener: String) {
        Counter(label: "petrel_connections_total", dimensions: [("listener", listener)], factory: self.factory)
            .increment()
    }

    /// A message's fate at the end of its data: `accepted`, or refused with the reply's code.
    public func message(_ result: String, reason: String) {
        Counter(
            label: "petrel_messages_total",
            dimensions: [("result", result), ("reason", reason)],
            factory: self.factory
        ).increment()
    }

    /// A recipient refused at RCPT TO.
    public func recipientRefused(reason: String) {
        Counter(label: "petrel_recipients_refused_total", dimensions: [("reason", reason)], factory: self.factory)
            .increment()
    }

    public func authentication(method: String, result: String) {
        Counter(
            label: "petrel_authentication_results_total",
            dimensions: [("method", method), ("result", result)],
            factory: self.factory
        ).increment()
    }

    /// How long making a message durable took (its fsyncs, file and directories).
    public func storeCommit(_ duration: Duration) {
        Timer(label: "petrel_store_commit_seconds", factory: self.factory).recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        )
    }
}
