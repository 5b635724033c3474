import DNSClient
import Delivery
import Logging
import MailIntake
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import PetrelSystem
import Prometheus
import ServiceLifecycle

/// The server's metrics: swift-metrics counters and timers recorded into this server's own
/// Prometheus registry (not the process-wide one, so that servers in one process, tests, keep
/// theirs apart), plus gauges read when scraped (queue, DNS).
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let factory: PrometheusMetricsFactory
    /// Counter totals of the resolver at the last scrape: the counters move by the difference.
    private let lastDNS = NIOLockedValueBox(DNSClient.Statistics())

    public init() {
        var factory = PrometheusMetricsFactory(registry: self.registry)
        // Store commits take a millisecond or so (fsync); the default buckets start at 5 ms.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
    }

    /// What the inbound pipeline records, into this server's registry.
    public var intake: IntakeMetrics { IntakeMetrics(factory: self.factory) }

    /// The text format, with the gauges read now.
    func render(queue: QueueRunner, dns: DNSClient, now: Int64) -> [UInt8] {
        let (messages, oldest) = queue.size
        func gauge(_ name: String, _ unit: String, _ help: String) -> Prometheus.Gauge {
            self.registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "petrel", metricName: name, unitName: unit, helpText: help)
            )
        }
        func counter(_ name: String, _ help: String) -> Prometheus.Counter {
            self.registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "petrel",
                    metricName: name,
                    unitName: "total",
                    helpText: help
                )
            )
        }
        gauge("queue", "messages", "Messages in the outbound queue").set(Double(messages))
        gauge("queue_oldest_age", "seconds", "Age of the oldest message in the outbound queue")
            .set(Double(oldest.map { now - $0 } ?? 0))
        let statistics = dns.statistics
        let last = self.lastDNS.withLockedValue { last in
            defer { last = statistics }
            return last
        }
        counter("dns_lookups", "DNS lookups asked of the resolver")
            .increment(by: Int64(statistics.lookups - last.lookups))
        counter("dns_cache_hits", "DNS lookups answered from the cache")
            .increment(by: Int64(statistics.cacheHits - last.cacheHits))
        counter("dns_queries", "DNS queries sent to servers")
            .increment(by: Int64(statistics.queriesSent - last.queriesSent))
        return self.registry.emitToBuffer()
    }
}

/// `[metrics] listen`: Prometheus text at `/metrics` over plain HTTP/1.1, nothing else. Bind it
/// to loopback or a private address: it is not authenticated.
final class MetricsEndpoint: Service, Sendable {
    let channel: any Channel

    static func bind(
        host: String,
        port: Int,
        render: @escaping @Sendable () -> [UInt8]
    ) async throws -> MetricsEndpoint {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(Responder(render: render))
                }
            }
            .bind(host: host, port: port)
            .get()
        return MetricsEndpoint(channel: channel)
    }

    private init(channel: any Channel) {
        self.channel = channel
    }

    var localAddress: SocketAddress? { self.channel.localAddress }

    func run() async throws {
        await withGracefulShutdownHandler {
            try? await self.channel.closeFuture.get()
        } onGracefulShutdown: {
            self.channel.close(promise: nil)
        }
    }

    final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let render: @Sendable () -> [UInt8]

        init(render: @escaping @Sendable () -> [UInt8]) {
            self.render = render
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let request) = self.unwrapInboundIn(data) else { return }
            let found = request.method == .GET && request.uri.split(separator: "?").first == "/metrics"
            let body = found ? self.render() : Array("not found: try /metrics\n".utf8)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: "\(body.count)")
            headers.add(name: "Connection", value: "close")
            let head = HTTPResponseHead(version: request.version, status: found ? .ok : .notFound, headers: headers)
            context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                loopBound.value.close(promise: nil)
            }
        }
    }
}
