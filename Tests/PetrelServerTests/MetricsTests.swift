import Accounts
import DNSCore
import Foundation
import MailCore
import MailStore
import PetrelConfiguration
import PetrelServer
import PetrelSystem
import PetrelTestSupport
import ServerTestSupport
import Testing

/// `[metrics] listen`: the Prometheus text while mail flows in and out.
@Suite struct MetricsTests {
    /// A plain HTTP/1.1 GET over a socket; the whole response.
    static func get(_ path: String, port: Int) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test func countersMoveWhileMailFlows() async throws {
        let zone = InMemoryZone()
        zone.add("remote.test", .mx(preference: 10, exchange: DNSName("mx.remote.test")!), type: .mx)
        zone.add("mx.remote.test", .a(IPAddress("127.0.0.21")!.octets), type: .a)
        let server = try await TestServer.start(domains: ["petrel.test"], resolver: zone) { configuration in
            configuration.metricsListen = ListenAddress(host: "127.0.0.1", port: 0)
        }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.21")
        try server.server.accounts.addMailbox(AccountAddress(validating: "bob@petrel.test"), password: nil)
        let port = try #require(server.server.metricsAddress?.port)

        // In: one message accepted, one recipient refused.
        let client = try await server.connectAndGreet()
        try await client.send("MAIL FROM:<someone@elsewhere.test>")
        try await client.expect(250)
        try await client.send("RCPT TO:<nobody@petrel.test>")
        try await client.expect(550)
        try await client.send("RCPT TO:<bob@petrel.test>")
        try await client.expect(250)
        try await client.send("DATA")
        try await client.expect(354)
        try await client.sendRaw(Array("From: someone@elsewhere.test\r\nSubject: m\r\n\r\nhi\r\n.\r\n".utf8))
        try await client.expect(250)
        try await client.send("QUIT")
        // Out: a message through pickup, delivered to the scripted MX.
        try OutboundQueue.drop(
            message: Array("Return-Path: <bob@petrel.test>\r\nSubject: out\r\n\r\nbody\r\n".utf8),
            entry: QueueEntry(
                id: "M1",
                createdAt: Int64(Date().timeIntervalSince1970),
                sender: .mailbox("bob@petrel.test"),
                recipients: ["carol@remote.test"],
                smtpUTF8: false,
                body: "7BIT",
                authenticatedUser: nil
            ),
            into: server.dataDirectory + "/pickup"
        )
        #expect(await receiver.waitForMessages(1).count == 1)

        let expected = [
            "petrel_connections_total{listener=\"smtp\"} 1",
            "petrel_recipients_refused_total{reason=\"unknown_user\"} 1",
            "petrel_messages_total{result=\"accepted\",reason=\"inbox\"} 1",
            "petrel_authentication_results_total{method=\"dmarc\",result=\"none\"} 1",
            "petrel_deliveries_total{result=\"sent\"} 1",
            "petrel_store_commit_seconds_count 1",
            "petrel_queue_messages 0.0",
        ]
        // The delivery's bookkeeping (queue entry removed, gauge updated) follows the receiver's 250.
        var response = ""
        _ = await eventually {
            response = (try? Self.get("/metrics", port: port)) ?? ""
            return expected.allSatisfy { response.contains($0 + "\n") }
        }
        #expect(response.hasPrefix("HTTP/1.1 200 OK"))
        #expect(response.contains("Content-Type: text/plain; version=0.0.4"))
        for line in expected {
            #expect(response.contains(line + "\n"), "\(line)\n\(response)")
        }
        #expect(response.contains("petrel_dns_lookups_total "))
        #expect(response.contains("# TYPE petrel_store_commit_seconds histogram"))
        #expect(try Self.get("/other", port: port).hasPrefix("HTTP/1.1 404"))
        await receiver.stop()
        try await server.stop()
    }
}
