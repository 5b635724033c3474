import Foundation
import MailStore
import PetrelSystem
import PetrelTestSupport
import ServerTestSupport
import Testing

/// The real `petrel` process delivering through the test DNS server (MX records) to scripted MX servers:
/// `petrel sendmail`, `petrel queue ...`, and kill -9 in the middle of a delivery.
@Suite struct QueueCommandTests {
    let directory: String
    let config: String
    let dns: TestDNSServer

    /// remote.test → mx.remote.test (127.0.0.8); slow.test → mx.slow.test (127.0.0.9).
    init() throws {
        self.dns = try TestDNSServer(extraZones: [
            "remote.test": "@ MX 10 mx\nmx A 127.0.0.8",
            "slow.test": "@ MX 10 mx\nmx A 127.0.0.9",
        ])
        self.directory = try makeTemporaryDirectory()
        self.config = self.directory + "/petrel.toml"
        try """
        hostname = "mx.petrel.test"
        data_dir = "data"
        domains = ["petrel.test"]
        [listen]
        smtp = ["127.0.0.1:0"]
        [dns]
        servers = ["127.0.0.1:\(self.dns.port)"]
        [inbound]
        verify = false
        [delivery]
        retry_first = 1
        retry_max = 1
        reply_timeout = 20
        """.write(toFile: self.config, atomically: true, encoding: .utf8)
    }

    func petrel(_ arguments: String..., input: String? = nil) async throws -> PetrelProcess.Result {
        try await PetrelProcess.run(arguments + ["--config", self.config], input: input, directory: self.directory)
    }

    func serve() async throws -> PetrelProcess {
        let server = PetrelProcess(arguments: ["serve", "--config", self.config], directory: self.directory)
        try server.start()
        _ = try await server.listeningPort()
        return server
    }

    /// Runs `body` with a server, which is stopped and waited for however `body` ends (a
    /// process left running keeps its pipes registered with libdispatch).
    func withServer(_ body: (PetrelProcess) async throws -> Void) async throws {
        let server = try await self.serve()
        do {
            try await body(server)
        } catch {
            server.signal(SIGTERM)
            _ = await server.exit()
            throw error
        }
        server.signal(SIGTERM)
        _ = await server.exit()
    }

    func queue() -> OutboundQueue { OutboundQueue(directory: self.directory + "/data/queue") }

    func cleanUp() {
        self.dns.stop()
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    @Test func killedDuringDeliveryEachRecipientGetsItOnce() async throws {
        defer { self.cleanUp() }
        var script = ScriptedMXServer.Script()
        // The first connection's 250 is held for good: the server is killed before it can hear it,
        // however slow the machine. Later connections are answered at once.
        script.dataDelay = { $0 == 0 ? .seconds(3600) : .zero }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.8", script: script)
        defer { Task { await receiver.stop() } }
        var result = try await self.petrel("user", "add", "alice@petrel.test")
        #expect(result.status == 0, "\(result.standardError)")
        let server = try await self.serve()
        result = try await self.petrel(
            "sendmail",
            "-f",
            "alice@petrel.test",
            "bob@remote.test",
            "carol@remote.test",
            input: "Subject: kill test\n\nbody\n"
        )
        #expect(result.status == 0, "\(result.standardError)")
        // Wait until the whole message is out and the receiver holds its 250, then kill -9.
        #expect(await eventually { receiver.dataEnds >= 1 })
        server.signal(SIGKILL)
        _ = await server.exit()
        #expect(receiver.messages.isEmpty, "the 250 never reached the killed server")
        let entries = try self.queue().entries()
        try #require(entries.count == 1)
        #expect(entries[0].recipients.map(\.state) == [.pending, .pending])
        try await self.withServer { _ in
            #expect(await eventually(within: .seconds(30)) { (try? self.queue().entries().isEmpty) == true })
        }
        let messages = receiver.messages
        #expect(messages.count == 1, "\(receiver.connections) connections")
        #expect(messages.flatMap(\.recipients).sorted() == ["bob@remote.test", "carol@remote.test"])
    }

    @Test func queueListRetryBounceDelete() async throws {
        defer { self.cleanUp() }
        var script = ScriptedMXServer.Script()
        script.recipient = { _, _ in "451 4.7.1 greylisted, try later" }
        let receiver = try await ScriptedMXServer.start(host: "127.0.0.9", script: script)
        defer { Task { await receiver.stop() } }
        var result = try await self.petrel("user", "add", "alice@petrel.test")
        #expect(result.status == 0, "\(result.standardError)")
        // Queued while no server runs: picked up when it starts.
        result = try await self.petrel(
            "sendmail",
            "-f",
            "alice@petrel.test",
            "-t",
            input: "To: dave@slow.test\nBcc: erin@slow.test\nSubject: waiting\n\nbody\n"
        )
        #expect(result.status == 0, "\(result.standardError)")
        try await self.withServer { _ in
            #expect(
                await eventually { (try? self.queue().entries().first?.recipients.first?.attempts ?? 0) ?? 0 >= 1 }
            )
            let entries = try self.queue().entries()
            try #require(entries.count == 1)
            let id = entries[0].id
            #expect(entries[0].recipients.map(\.address) == ["dave@slow.test", "erin@slow.test"])

            result = try await self.petrel("queue", "list")
            #expect(result.standardOutput.contains(id))
            #expect(result.standardOutput.contains("dave@slow.test  pending"))
            #expect(result.standardOutput.contains("last: 451 4.7.1 greylisted, try later"))
            result = try await self.petrel("queue", "show", id)
            #expect(result.standardOutput.contains("sender: <alice@petrel.test>"))
            #expect(result.standardOutput.contains("Subject: waiting"))
            #expect(!result.standardOutput.contains("Bcc:"), "Bcc is not kept in the message")

            let before = receiver.connections
            result = try await self.petrel("queue", "retry", id)
            #expect(result.standardOutput.contains("retry: done"), "\(result.standardOutput)\(result.standardError)")
            #expect(await eventually { receiver.connections > before })

            result = try await self.petrel("queue", "bounce", id)
            #expect(result.standardOutput.contains("bounce: done"))
            // The report goes to alice, locally; the message leaves the queue.
            let maildir = self.directory + "/data/mail/alice@petrel.test/new"
            #expect(
                await eventually {
                    ((try? FileManager.default.contentsOfDirectory(atPath: maildir)) ?? []).count == 1
                }
            )
            #expect(await eventually { (try? self.queue().entries().isEmpty) == true })
            let report = try FileManager.default.contentsOfDirectory(atPath: maildir).first.map {
                try String(contentsOfFile: maildir + "/" + $0, encoding: .utf8)
            }
            #expect(report?.contains("Final-Recipient: rfc822; dave@slow.test") == true)
            #expect(report?.contains("returned to the sender by the postmaster") == true)

            result = try await self.petrel(
                "sendmail",
                "-f",
                "alice@petrel.test",
                "frank@slow.test",
                input: "Subject: to delete\n\nbody\n"
            )
            #expect(await eventually { (try? self.queue().entries().count) == 1 })
            let second = try #require(try self.queue().entries().first?.id)
            result = try await self.petrel("queue", "delete", second)
            #expect(result.standardOutput.contains("delete: done"))
            #expect(try self.queue().entries().isEmpty)
            result = try await self.petrel("queue", "delete", second)
            #expect(result.status != 0)
            #expect(result.standardError.contains("is not in the queue"))
        }
        // Without a server, the queue is read directly.
        result = try await self.petrel("queue", "list")
        #expect(result.standardOutput == "the queue is empty\n")
    }
}
