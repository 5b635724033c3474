import IMAPCore
import Metrics

/// What the IMAP server counts, through swift-metrics into the factory the server gives (its
/// own Prometheus registry): sessions by listener, sessions open, and commands by name and
/// result (`OK`, `NO`, `BAD`; an unreadable command is `unreadable`).
public struct IMAPMetrics: Sendable {
    let factory: (any MetricsFactory)?

    public init(factory: (any MetricsFactory)?) {
        self.factory = factory
    }

    func sessionStarted(_ kind: IMAPServerConfiguration.Kind) {
        guard let factory else { return }
        Counter(label: "petrel_imap_sessions_total", dimensions: [("listener", kind.rawValue)], factory: factory)
            .increment()
        Meter(label: "petrel_imap_sessions_open", factory: factory).increment()
    }

    func sessionEnded() {
        guard let factory else { return }
        Meter(label: "petrel_imap_sessions_open", factory: factory).decrement()
    }

    func command(_ name: String, _ result: String) {
        guard let factory else { return }
        Counter(
            label: "petrel_imap_commands_total",
            dimensions: [("command", name), ("result", result)],
            factory: factory
        ).increment()
    }
}
