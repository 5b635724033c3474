import MailCore
import NIOSupport
import Testing

@testable import SMTPServer

/// The per-client limit: an IPv4 address, or an IPv6 /64 (a host has a whole /64 to pick from).
struct ConnectionLimiterTests {
    @Test func perClientAndTotalLimits() {
        let limiter = ConnectionLimiter(limits: .init(total: 5, perIP: 2))
        #expect(limiter.acquire(ip: "192.0.2.1") && limiter.acquire(ip: "192.0.2.1"))
        #expect(!limiter.acquire(ip: "192.0.2.1"), "a third from one address")
        #expect(!limiter.acquire(ip: "::ffff:192.0.2.1"), "the same address, IPv4-mapped")
        #expect(limiter.acquire(ip: "192.0.2.2"))
        limiter.release(ip: "192.0.2.1")
        #expect(limiter.acquire(ip: "::ffff:192.0.2.1"), "a released slot is free again")
        #expect(limiter.acquire(ip: "198.51.100.7") && limiter.acquire(ip: "198.51.100.8"))
        #expect(!limiter.acquire(ip: "198.51.100.9"), "5 in all")
        #expect(limiter.openConnections == 5)
    }

    @Test func anIPv6ClientIsItsSlash64() {
        let limiter = ConnectionLimiter(limits: .init(total: 100, perIP: 2))
        #expect(limiter.acquire(ip: "2001:db8:1:2::1") && limiter.acquire(ip: "2001:db8:1:2:ffff:ffff:ffff:ffff"))
        #expect(!limiter.acquire(ip: "2001:db8:1:2:dead:beef::9"), "another address of the same /64")
        #expect(limiter.acquire(ip: "2001:db8:1:3::1"), "the next /64 is another client")
        #expect(IPAddress.client("2001:DB8:1:2:3:4:5:6") == "2001:db8:1:2::/64")
        #expect(IPAddress.client("::ffff:203.0.113.9") == "203.0.113.9")
        #expect(IPAddress.client("unix") == "unix", "not an address: counted as it is")
    }
}
