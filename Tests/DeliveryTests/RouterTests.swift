import DNSCore
import Delivery
import MailCore
import PetrelTestSupport
import SMTPCore
import Testing

/// Routing by MX (RFC 5321 §5.1, RFC 7505) on in-memory zones, the retry schedule and the hop
/// count.
struct RouterTests {
    /// A generator with a fixed sequence, so the shuffling of equal preferences is reproducible.
    struct Fixed: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state = self.state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return self.state
        }
    }

    static func zone() -> InMemoryZone {
        let zone = InMemoryZone()
        zone.add("remote.test", .mx(preference: 20, exchange: DNSName("backup.remote.test")!), type: .mx)
        zone.add("remote.test", .mx(preference: 10, exchange: DNSName("mx.remote.test")!), type: .mx)
        zone.add("mx.remote.test", .a([127, 0, 0, 2]), type: .a)
        zone.add("mx.remote.test", .aaaa(IPAddress("::1")!.octets), type: .aaaa)
        zone.add("backup.remote.test", .a([127, 0, 0, 3]), type: .a)
        zone.add("implicit.test", .a([127, 0, 0, 4]), type: .a)
        zone.add("nullmx.test", .mx(preference: 0, exchange: .root), type: .mx)
        zone.add("dangling.test", .mx(preference: 10, exchange: DNSName("nowhere.dangling.test")!), type: .mx)
        zone.add("dangling.test", .mx(preference: 20, exchange: DNSName("mx.remote.test")!), type: .mx)
        zone.add("self.test", .mx(preference: 10, exchange: DNSName("mx.example.test")!), type: .mx)
        zone.add("behind.test", .mx(preference: 5, exchange: DNSName("mx.remote.test")!), type: .mx)
        zone.add("behind.test", .mx(preference: 10, exchange: DNSName("mx.example.test")!), type: .mx)
        zone.add("behind.test", .mx(preference: 20, exchange: DNSName("backup.remote.test")!), type: .mx)
        zone.addEmpty("empty.test")
        zone.addTimeout("slow.test")
        return zone
    }

    static func route(_ domain: String) async -> Router.Route {
        var random = Fixed(state: 42)
        let router = Router(resolver: Self.zone(), localNames: [DNSName("mx.example.test")!])
        return await router.route(DNSName(domain)!, random: &random)
    }

    @Test func mxInPreferenceOrderIPv6First() async {
        guard case .hosts(let hosts) = await Self.route("remote.test") else {
            Issue.record("no hosts")
            return
        }
        #expect(hosts.map(\.name) == [DNSName("mx.remote.test")!, DNSName("backup.remote.test")!])
        #expect(hosts[0].addresses.map(\.description) == ["::1", "127.0.0.2"])
        #expect(hosts.map(\.preference) == [10, 20])
    }

    @Test func implicitNullAndMissing() async {
        guard case .hosts(let hosts) = await Self.route("implicit.test") else {
            Issue.record("no implicit MX")
            return
        }
        #expect(
            hosts.count == 1 && hosts[0].preference == nil && hosts[0].addresses.map(\.description) == ["127.0.0.4"]
        )
        #expect(
            await Self.route("nullmx.test")
                == .bounce(
                    status: EnhancedStatusCode(5, 1, 10),
                    reason: "nullmx.test accepts no mail (null MX, RFC 7505)"
                )
        )
        #expect(
            await Self.route("nosuch.test")
                == .bounce(status: EnhancedStatusCode(5, 1, 2), reason: "nosuch.test does not exist (NXDOMAIN)")
        )
        let empty = await Self.route("empty.test")
        #expect(
            empty == .bounce(status: EnhancedStatusCode(5, 1, 2), reason: "empty.test has no MX record and no address"),
            "\(empty)"
        )
        guard case .deferred(let reason) = await Self.route("slow.test") else {
            Issue.record("a DNS timeout is not deferred")
            return
        }
        #expect(reason.contains("timeout"))
    }

    @Test func unresolvableHostsAreSkippedAndLoopsRefused() async {
        guard case .hosts(let hosts) = await Self.route("dangling.test") else {
            Issue.record("no hosts")
            return
        }
        #expect(hosts.map(\.name) == [DNSName("mx.remote.test")!])
        #expect(
            await Self.route("self.test")
                == .bounce(status: EnhancedStatusCode(5, 4, 6), reason: "mail for self.test loops back to myself")
        )
        // We are an MX for behind.test: only the hosts preferred to us are used.
        guard case .hosts(let preferred) = await Self.route("behind.test") else {
            Issue.record("no hosts")
            return
        }
        #expect(preferred.map(\.name) == [DNSName("mx.remote.test")!])
    }

    @Test func equalPreferencesAreShuffled() async {
        let zone = InMemoryZone()
        for index in 1...4 {
            zone.add("spread.test", .mx(preference: 10, exchange: DNSName("mx\(index).spread.test")!), type: .mx)
            zone.add("mx\(index).spread.test", .a([127, 0, 1, UInt8(index)]), type: .a)
        }
        var orders: Set<[DNSName]> = []
        for seed in 1...20 {
            var random = Fixed(state: UInt64(seed))
            if case .hosts(let hosts) = await Router(resolver: zone, localNames: []).route(
                DNSName("spread.test")!,
                random: &random
            ) {
                orders.insert(hosts.map(\.name))
            }
        }
        #expect(orders.count > 1, "more than one order over 20 seeds")
        #expect(orders.allSatisfy { $0.count == 4 })
    }

    @Test func retriesBackOffUntilTooOld() {
        let schedule = RetrySchedule()
        #expect((1...6).map(schedule.delay(afterAttempts:)) == [300, 600, 1200, 2400, 3600, 3600])
        #expect(schedule.nextAttempt(now: 1000, arrival: 1000, attempts: 1) == 1300)
        #expect(
            schedule.nextAttempt(now: 1000 + 431_990, arrival: 1000, attempts: 30) == 1000 + 432_000,
            "not past the deadline"
        )
        #expect(schedule.nextAttempt(now: 1000 + 432_000, arrival: 1000, attempts: 31) == nil)
    }

    @Test func hopCount() {
        let fifty = String(repeating: "Received: from a by b; Sun, 29 Nov 2026 12:00:00 +0000\r\n", count: 50)
        #expect(!HopCount.isLooping(HeaderSection(parsing: Array(fifty.utf8))))
        #expect(HopCount.isLooping(HeaderSection(parsing: Array((fifty + "Received: x\r\n").utf8))))
    }
}
