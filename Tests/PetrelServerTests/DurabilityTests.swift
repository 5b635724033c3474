import Foundation
import MailCore
import MailStore
import NIOConcurrencyHelpers
import PetrelTestSupport
import ServerTestSupport
import Synchronization
import Testing

/// The promise behind every 250 after DATA: the message is on disk and survives kill -9.
///
/// Twenty clients send continuously while the server is killed with SIGKILL at random moments and
/// started again: half deliver to a local mailbox over port 25, half submit mail for a remote
/// recipient over implicit TLS with AUTH, which goes to the outbound queue. Afterwards every
/// message that was answered 250 must be in the Maildir or the queue exactly once and complete; a
/// message that was not answered may be there at most once; and at no moment may a partial file be
/// visible in `new/`.
@Suite struct DurabilityTests {
    static let clients = 20
    static let kills = 4

    /// Shared between the clients and the controller.
    final class Run: Sendable {
        let port = Atomic<Int>(0)
        let submissionsPort = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let acknowledged = NIOLockedValueBox<Set<String>>([])
        let attempted = Atomic<Int>(0)
    }

    /// The message a client sends under `id`, and what the Maildir copy must look like.
    static func content(id: String) -> (wire: String, stored: String) {
        let lines = 1 + abs(id.hashValue % 300)
        var body = ""
        for index in 0..<lines {
            body += "line \(index) of \(id) " + String(repeating: "abcdefghij", count: index % 8) + "\r\n"
        }
        let wire = "Subject: durability \(id)\r\nFrom: <alice@localhost>\r\nX-Test-Id: \(id)\r\n\r\n" + body
        return (wire, wire.replacingOccurrences(of: "\r\n", with: "\n"))
    }

    static let password = "durable password"

    static func client(number: Int, run: Run) async {
        let submits = number % 2 == 1
        var sequence = 0
        while !run.stopping.load(ordering: .relaxed) {
            let connected =
                submits
                ? try? await SMTPTestClient.connect(
                    port: run.submissionsPort.load(ordering: .relaxed),
                    implicitTLS: true
                )
                : try? await SMTPTestClient.connect(port: run.port.load(ordering: .relaxed))
            guard let client = connected else {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            defer { Task { await client.close() } }
            guard await client.read(timeout: .seconds(5).stretched).reply?.code == 220,
                (try? await client.send("EHLO durability-\(number).example")) != nil,
                await client.read(timeout: .seconds(5).stretched).reply?.code == 250
            else { continue }
            if submits {
                let credentials = Base64.encode(Array("\0alice@localhost\0\(Self.password)".utf8))
                guard (try? await client.send("AUTH PLAIN \(credentials)")) != nil,
                    await client.read(timeout: .seconds(5).stretched).reply?.code == 235
                else { continue }
            }
            while !run.stopping.load(ordering: .relaxed) {
                sequence += 1
                let id = "c\(number)-\(sequence)"
                run.attempted.add(1, ordering: .relaxed)
                do {
                    try await client.send(
                        submits ? "MAIL FROM:<alice@localhost>" : "MAIL FROM:<sender\(number)@example.net>"
                    )
                    try await client.expect(250, timeout: .seconds(5).stretched)
                    try await client.send(submits ? "RCPT TO:<rcpt@remote.example>" : "RCPT TO:<postmaster@localhost>")
                    try await client.expect(250, timeout: .seconds(5).stretched)
                    try await client.send("DATA")
                    try await client.expect(354, timeout: .seconds(5).stretched)
                    try await client.sendRaw(Array((Self.content(id: id).wire + ".\r\n").utf8))
                    try await client.expect(250, timeout: .seconds(10).stretched)
                    run.acknowledged.withLockedValue { _ = $0.insert(id) }
                } catch {
                    break  // connection lost (the server was killed): reconnect, never resend this id
                }
            }
        }
    }

    /// Checks every file in `new/`; returns the ids found, with repetitions.
    static func scan(_ directory: String, checked: inout Set<String>) -> (ids: [String], problems: [String]) {
        var ids: [String] = []
        var problems: [String] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names {
            guard let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else { continue }
            guard let idLine = text.split(separator: "\n").first(where: { $0.hasPrefix("X-Test-Id: ") }) else {
                problems.append("\(name): no X-Test-Id (partial file?)")
                continue
            }
            let id = String(idLine.dropFirst("X-Test-Id: ".count))
            ids.append(id)
            if checked.insert(name).inserted {
                let expected = Self.content(id: id).stored
                guard let start = text.range(of: "Subject: durability ") else {
                    problems.append("\(name): no Subject")
                    continue
                }
                if text[start.lowerBound...] != expected[...] {
                    problems.append("\(name): content of \(id) incomplete")
                }
            }
        }
        return (ids, problems)
    }

    /// Checks every committed queue entry; returns the ids found, with repetitions.
    static func scanQueue(_ directory: String) -> (ids: [String], problems: [String]) {
        var ids: [String] = []
        var problems: [String] = []
        let entries = (try? OutboundQueue(directory: directory).entries()) ?? []
        for entry in entries {
            guard let text = try? String(contentsOfFile: directory + "/\(entry.id).eml", encoding: .utf8),
                let idLine = text.split(separator: "\r\n").first(where: { $0.hasPrefix("X-Test-Id: ") })
            else {
                problems.append("\(entry.id): message unreadable or partial")
                continue
            }
            let id = String(idLine.dropFirst("X-Test-Id: ".count))
            ids.append(id)
            let expected = Self.content(id: id).wire
            if let start = text.range(of: "Subject: durability "), text[start.lowerBound...] != expected[...] {
                problems.append("\(entry.id): content of \(id) incomplete")
            }
            if entry.recipients.map(\.address.description) != ["rcpt@remote.example"] || text.utf8.count != entry.size {
                problems.append("\(entry.id): envelope does not match")
            }
        }
        return (ids, problems)
    }

    @Test func everyAcknowledgedMessageSurvivesKill9ExactlyOnce() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/petrel.toml"
        try """
        data_dir = "data"
        [listen]
        smtp = ["127.0.0.1:0"]
            submissions = ["127.0.0.1:0"]
        [limits]
        connections_per_ip = 100
        # This test is about the disk: no SPF/DKIM/DMARC lookups (there is no DNS here).
        [inbound]
        verify = false
        # The queue copies are checked on disk: nothing is delivered from them.
        [delivery]
        hold = true
        """.write(toFile: config, atomically: true, encoding: .utf8)
        // postmaster@localhost goes to the domain's first mailbox, alice.
        let maildir = directory + "/data/mail/alice@localhost/new"
        let queue = directory + "/data/queue"
        let added = try await PetrelProcess.run(
            ["user", "add", "alice@localhost", "--password-stdin", "--config", config],
            input: Self.password + "\n",
            directory: directory
        )
        #expect(added.status == 0, "\(added.standardError)")

        let run = Run()
        var server = PetrelProcess(arguments: ["serve", "--config", config], directory: directory)
        try server.start()
        run.port.store(try await server.listeningPort(), ordering: .relaxed)
        run.submissionsPort.store(try await server.listeningPort(.submissions), ordering: .relaxed)

        let clients = Task {
            await withTaskGroup(of: Void.self) { group in
                for number in 0..<Self.clients { group.addTask { await Self.client(number: number, run: run) } }
            }
        }
        // Watches new/ the whole time: a partial file there would be visible to a mail reader.
        let watcher = Task { () -> [String] in
            var checked = Set<String>()
            var problems: [String] = []
            while !run.stopping.load(ordering: .relaxed) {
                problems += Self.scan(maildir, checked: &checked).problems
                try? await Task.sleep(for: .milliseconds(50))
            }
            return problems
        }

        var restarts = 0
        /// Acknowledged messages in all, and of them those submitted (odd clients), for progress.
        func progress() -> (all: Int, submitted: Int) {
            let acknowledged = run.acknowledged.withLockedValue { $0 }
            return (
                acknowledged.count, acknowledged.filter { Int($0.dropFirst().prefix { $0 != "-" })! % 2 == 1 }.count
            )
        }
        for _ in 0..<Self.kills {
            // Each kill comes once the restarted server has accepted mail of both kinds (however
            // slowly a loaded machine runs the clients), at a random moment after that.
            let before = progress()
            _ = await eventually(within: .seconds(30)) {
                let now = progress()
                return now.all - before.all >= 15 && now.submitted - before.submitted >= 3
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...400)))
            server.signal(SIGKILL)
            _ = await server.exit()
            server = PetrelProcess(arguments: ["serve", "--config", config], directory: directory)
            try server.start()
            run.port.store(try await server.listeningPort(), ordering: .relaxed)
            run.submissionsPort.store(try await server.listeningPort(.submissions), ordering: .relaxed)
            restarts += 1
        }
        try await Task.sleep(for: .seconds(1).stretched)
        run.stopping.store(true, ordering: .relaxed)
        await clients.value
        let watched = await watcher.value
        server.signal(SIGTERM)
        #expect(await server.exit() == 0)

        var checked = Set<String>()
        let (localIDs, localProblems) = Self.scan(maildir, checked: &checked)
        let (queuedIDs, queueProblems) = Self.scanQueue(queue)
        let ids = localIDs + queuedIDs
        let problems = localProblems + queueProblems
        #expect(queuedIDs.count >= 10, "only \(queuedIDs.count) messages went through the queue")
        let acknowledged = run.acknowledged.withLockedValue { $0 }
        var counts: [String: Int] = [:]
        for id in ids { counts[id, default: 0] += 1 }

        #expect(restarts == Self.kills)
        #expect(acknowledged.count >= 50, "only \(acknowledged.count) messages were acknowledged")
        #expect(watched.isEmpty, "\(watched.prefix(5))")
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        let missing = acknowledged.filter { counts[$0] == nil }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.sorted().prefix(10))")
        let duplicated = counts.filter { $0.value > 1 }
        #expect(duplicated.isEmpty, "delivered twice: \(duplicated.keys.sorted().prefix(10))")
        let incoming = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/data/incoming")) ?? []
        #expect(incoming.isEmpty, "left in incoming/: \(incoming)")
        print(
            "durability: \(run.attempted.load(ordering: .relaxed)) attempted, \(acknowledged.count) acknowledged, "
                + "\(localIDs.count) delivered, \(queuedIDs.count) queued, \(Self.kills) kills"
        )
    }
}
