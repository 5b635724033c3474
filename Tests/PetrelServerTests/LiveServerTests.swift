import Accounts
import Foundation
import MailStore
import PetrelConfiguration
import PetrelServer
import PetrelSystem
import PetrelTestSupport
import ServerTestSupport
import Testing

/// The real server on an ephemeral loopback port, driven over real sockets.
@Suite struct LiveServerTests {
    static let message =
        "From: <bob@example.net>\r\nTo: <alice@example.test>\r\nSubject: hello\r\n\r\nHi Alice,\r\n..a dot\r\n"

    static func exampleServer(
        configure: @Sendable @escaping (inout Configuration) -> Void = { _ in }
    ) async throws -> TestServer {
        let server = try await TestServer.start(domains: ["example.test", "other.test"], configure: configure)
        try server.server.accounts.addMailbox(AccountAddress(validating: "alice@example.test"), password: nil)
        try server.server.accounts.addMailbox(AccountAddress(validating: "bob@example.test"), password: nil)
        return server
    }

    /// The files a server makes that hold secrets are its owner's alone from their first moment,
    /// whatever the process's umask (the test process has the shell's, usually 022; only the
    /// `petrel` executable sets 077): the self-signed key, the account database and its journals.
    @Test func secretsAreMadeOwnerOnly() async throws {
        let server = try await Self.exampleServer()
        func mode(_ path: String) -> mode_t? {
            var status = stat()
            return stat(path, &status) == 0 ? status.st_mode & 0o777 : nil
        }
        #expect(mode(server.dataDirectory + "/tls/self-signed-key.pem") == 0o600)
        for suffix in ["", "-wal", "-shm"] {
            let path = server.dataDirectory + "/accounts.sqlite" + suffix
            #expect(mode(path) == nil || mode(path) == 0o600, "\(path)")
        }
        #expect(mode(server.dataDirectory) == 0o700)
        try await server.stop()
    }

    @Test func deliversIntoTheMaildirWithTraceHeaders() async throws {
        let server = try await Self.exampleServer()
        let client = try await server.connectAndGreet(helo: "client.example.net")
        let reply = try await client.sendMessage(
            from: "bob@example.net",
            to: ["alice@example.test"],
            content: Self.message
        ).text
        try await client.send("QUIT")
        try await client.expect(221)
        #expect(await client.read().description == "closed")

        let id = try #require(reply.split(separator: " ").last.map(String.init))
        #expect(reply == "2.0.0 OK: queued as \(id)")
        let messages = server.messages(in: "alice@example.test")
        #expect(messages.count == 1)
        let stored = try #require(messages.first)
        let lines = stored.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "Return-Path: <bob@example.net>")
        // The test server's DNS is empty: nothing to find, nothing refused.
        #expect(lines[1] == "Authentication-Results: mx.petrel.test;")
        #expect(lines[2] == "\tspf=none (example.net has no SPF record) smtp.mailfrom=bob@example.net;")
        #expect(lines[3] == "\tdkim=none (no signatures);")
        #expect(lines[4] == "\tdmarc=none (no DMARC record for example.net) header.from=example.net")
        #expect(lines[5] == "Received: from client.example.net ([127.0.0.1])")
        #expect(lines[6] == "\tby mx.petrel.test (Petrel) with ESMTP id \(id)")
        #expect(lines[7] == "\tfor <alice@example.test>;")
        #expect(lines[8].hasPrefix("\t") && lines[8].hasSuffix(String(lines[8].suffix(5))))
        // Everything after the trace fields is the message as sent, dot-unstuffed, LF line ends.
        let body = lines[9...].joined(separator: "\n")
        #expect(
            body
                == Self.message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(
                    of: "\n..",
                    with: "\n."
                )
        )
        try await server.stop()
    }

    @Test func recipientsAreCheckedAtRcpt() async throws {
        let server = try await Self.exampleServer()
        let client = try await server.connectAndGreet()
        try await client.send("MAIL FROM:<bob@example.net>")
        try await client.expect(250)
        for (recipient, code, enhanced) in [
            ("alice@example.test", 250, "2.1.5"), ("alice+lists@example.test", 250, "2.1.5"),
            ("ALICE@EXAMPLE.TEST", 250, "2.1.5"), ("bob@example.test", 250, "2.1.5"),
            ("nobody@example.test", 550, "5.1.1"), ("x@elsewhere.example", 554, "5.7.1"),
            ("postmaster@other.test", 250, "2.1.5"), ("victim%elsewhere.example@example.test", 550, "5.1.1"),
        ] {
            try await client.send("RCPT TO:<\(recipient)>")
            let reply = try #require(await client.read().reply)
            #expect(reply.code == code, "\(recipient)")
            #expect(reply.text.hasPrefix(enhanced), "\(recipient): \(reply)")
        }
        try await client.send("DATA")
        try await client.expect(354)
        try await client.sendRaw(Array("From: <bob@example.net>\r\nSubject: x\r\n\r\nbody\r\n.\r\n".utf8))
        try await client.expect(250)
        // alice once (three RCPTs reach her), bob once; postmaster@other.test has no mailbox of its own.
        #expect(server.messages(in: "alice@example.test").count == 1)
        #expect(server.messages(in: "bob@example.test").count == 1)
        #expect(server.messages(in: "postmaster@other.test").count == 1)
        await client.close()
        try await server.stop()
    }

    @Test func accountChangesApplyWithoutRestart() async throws {
        let server = try await Self.exampleServer()
        // A second connection to the database, as the CLI has.
        let cli = try AccountStore(path: server.server.configuration.files.accounts)
        let client = try await server.connectAndGreet()
        try await client.send("MAIL FROM:<bob@example.net>")
        try await client.expect(250)
        try await client.send("RCPT TO:<carol@example.test>")
        try await client.expect(550)
        try cli.addMailbox(AccountAddress(validating: "carol@example.test"), password: nil)
        try await client.send("RCPT TO:<carol@example.test>")
        try await client.expect(250)
        try cli.addAlias(
            AccountAddress(validating: "team@example.test"),
            targets: [
                AccountAddress(validating: "alice@example.test"), AccountAddress(validating: "carol@example.test"),
            ]
        )
        try await client.send("RCPT TO:<team@example.test>")
        try await client.expect(250)
        try await client.send("DATA")
        try await client.expect(354)
        try await client.sendRaw(Array("From: <bob@example.net>\r\nSubject: team\r\n\r\nhi\r\n.\r\n".utf8))
        try await client.expect(250)
        #expect(server.messages(in: "carol@example.test").count == 1)
        #expect(server.messages(in: "alice@example.test").count == 1)
        try cli.removeMailbox(AccountAddress(validating: "carol@example.test"))
        try await client.send("MAIL FROM:<bob@example.net>")
        try await client.expect(250)
        try await client.send("RCPT TO:<carol@example.test>")
        try await client.expect(550)
        await client.close()
        try await server.stop()
    }

    @Test func connectionLimitsAnswer421AtTheGreeting() async throws {
        let server = try await Self.exampleServer { configuration in
            configuration.limits.connectionsPerIP = 2
        }
        let first = try await server.connect()
        try await first.expect(220)
        let second = try await server.connect()
        try await second.expect(220)
        let third = try await server.connect()
        let refused = try await third.expect(421)
        #expect(refused.text.hasPrefix("4.7.0"))
        #expect(await third.read().description == "closed")
        await first.close()
        // The slot is free again once the server has seen the close.
        var accepted = false
        for _ in 0..<250 where !accepted {
            let next = try await server.connect()
            accepted = await next.read().reply?.code == 220
            await next.close()
            if !accepted { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(accepted)
        await second.close()
        await third.close()
        try await server.stop()
    }

    /// A pipelined batch whose replies fill the outbound buffer before the last one is due: the
    /// held replies must go out (hostile.py found the server waiting for ever at 5,000 NOOPs).
    @Test func aHugePipelinedBatchIsAnsweredInFull() async throws {
        let server = try await Self.exampleServer()
        let client = try await server.connect()
        try await client.expect(220)
        let count = 20_000
        try await client.sendRaw(Array(String(repeating: "NOOP\r\n", count: count).utf8) + Array("QUIT\r\n".utf8))
        var answered = 0
        while answered < count, await client.read(timeout: .seconds(10).stretched).reply?.code == 250 { answered += 1 }
        #expect(answered == count)
        try await client.expect(221)
        try await server.stop()
    }

    @Test func idleClientIsTimedOut() async throws {
        let server = try await Self.exampleServer { configuration in
            configuration.timeouts.command = 1
        }
        // Only reads: anything sent could race with the one-second deadline on a busy machine.
        let client = try await server.connect()
        try await client.expect(220)
        let reply = try await client.expect(421, timeout: .seconds(10).stretched)
        #expect(reply.text.hasPrefix("4.4.2"))
        #expect(await client.read().description == "closed")
        try await server.stop()
    }

    @Test func shutdownClosesIdleSessionsAndFinishesMessagesInFlight() async throws {
        let server = try await Self.exampleServer()
        let idle = try await server.connectAndGreet()
        let busy = try await server.connectAndGreet()
        try await busy.startData(from: "bob@example.net", to: ["alice@example.test"])
        try await busy.sendRaw(Array("From: <bob@example.net>\r\nSubject: in flight\r\n\r\nfirst half\r\n".utf8))
        try await Task.sleep(for: .milliseconds(100))

        // The data stays until the end: the check below must not race its removal.
        let stopping = Task { try await server.stop(removingData: false) }
        let closing = try await idle.expect(421)
        #expect(closing.text.hasPrefix("4.3.2"))
        #expect(await idle.read().description == "closed")

        try await busy.sendRaw(Array("second half\r\n.\r\n".utf8))
        try await busy.expect(250)
        #expect(await busy.read().description == "closed")
        #expect(server.messages(in: "alice@example.test").first?.hasSuffix("first half\nsecond half\n") == true)
        try await stopping.value
        // New connections are refused once the listener is closed.
        await #expect(throws: (any Error).self) { _ = try await server.connect() }
        server.removeData()
    }

    /// A message that never ends is cut off at `timeouts.shutdown`: the stop is still a clean
    /// one (`petrel serve` exits 0), and nothing of the unanswered message is kept.
    @Test func aSessionOutlastingTheShutdownLimitIsCutOff() async throws {
        let server = try await Self.exampleServer { configuration in
            configuration.timeouts.shutdown = 1
            configuration.timeouts.data = 3600  // so that only the shutdown limit can cut it off
        }
        let stalled = try await server.connectAndGreet()
        try await stalled.startData(from: "bob@example.net", to: ["alice@example.test"])
        try await stalled.sendRaw(
            Array("From: <bob@example.net>\r\nSubject: never finished\r\n\r\nfirst half\r\n".utf8)
        )
        let started = ContinuousClock.now
        try await server.stop(removingData: false)
        #expect(ContinuousClock.now - started < .seconds(30).stretched)
        let last = await stalled.read()
        #expect(last.description == "closed", "\(last)")
        #expect(server.messages(in: "alice@example.test").isEmpty)
        server.removeData()
    }

    @Test func oversizedMessageIsRefusedAndNothingStays() async throws {
        let server = try await Self.exampleServer { configuration in
            configuration.limits.messageSize = 100_000
        }
        let client = try await server.connectAndGreet()
        try await client.startData(from: "bob@example.net", to: ["alice@example.test"])
        let line = Array((String(repeating: "x", count: 998) + "\r\n").utf8)
        for _ in 0..<1000 { try await client.sendRaw(line) }
        try await client.sendRaw(Array(".\r\n".utf8))
        let reply = try await client.expect(552)
        #expect(reply.text.hasPrefix("5.3.4"))
        try await client.send("NOOP")
        try await client.expect(250)
        #expect(server.messages(in: "alice@example.test").isEmpty)
        let incoming = try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/incoming")
        #expect(incoming.isEmpty)
        await client.close()
        try await server.stop()
    }

    @Test func largeMessageInBdatChunks() async throws {
        let server = try await Self.exampleServer()
        let client = try await server.connectAndGreet()
        try await client.send("MAIL FROM:<bob@example.net> SIZE=3000000")
        try await client.expect(250)
        try await client.send("RCPT TO:<alice@example.test>")
        try await client.expect(250)
        var expected = "From: <bob@example.net>\nSubject: big\n\n"
        let head = "From: <bob@example.net>\r\nSubject: big\r\n\r\n"
        try await client.sendRaw(Array("BDAT \(head.utf8.count)\r\n\(head)".utf8))
        try await client.expect(250)
        let block = String(repeating: "0123456789abcdef", count: 60) + "\r\n"
        for index in 0..<30 {
            let chunk = String(repeating: block, count: 100)
            let last = index == 29 ? " LAST" : ""
            try await client.sendRaw(Array("BDAT \(chunk.utf8.count)\(last)\r\n\(chunk)".utf8))
            try await client.expect(250)
            expected += chunk.replacingOccurrences(of: "\r\n", with: "\n")
        }
        let stored = try #require(server.messages(in: "alice@example.test").first)
        #expect(stored.hasSuffix(expected))
        await client.close()
        try await server.stop()
    }

    /// With the disk full the client gets 452 4.3.1 and keeps its message; nothing half-written
    /// stays; once there is room, mail flows again. Needs root to mount a small tmpfs.
    @Test func fullDiskIsATemporaryFailure() async throws {
        let mountPoint = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        guard mount(tmpfsOfSize: "1m", at: mountPoint) else { return }
        defer { _ = unmount(mountPoint) }
        let server = try await Self.exampleServer { configuration in
            configuration.dataDirectory = mountPoint + "/data"
        }
        let client = try await server.connectAndGreet()
        try await client.startData(from: "bob@example.net", to: ["alice@example.test"])
        let line = Array((String(repeating: "y", count: 998) + "\r\n").utf8)
        try await client.sendRaw(Array("From: <bob@example.net>\r\n\r\n".utf8))
        for _ in 0..<2000 { try await client.sendRaw(line) }
        try await client.sendRaw(Array(".\r\n".utf8))
        let reply = try await client.expect(452)
        #expect(reply.text.hasPrefix("4.3.1"))
        #expect(server.messages(in: "alice@example.test").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPoint + "/data/incoming").isEmpty)
        let accepted = try await client.sendMessage(
            from: "bob@example.net",
            to: ["alice@example.test"],
            content: Self.message
        )
        #expect(accepted.text.hasPrefix("2.0.0"))
        #expect(server.messages(in: "alice@example.test").count == 1)
        await client.close()
        try await server.stop()
    }
}

func mount(tmpfsOfSize size: String, at path: String) -> Bool {
    runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
}

func unmount(_ path: String) -> Bool {
    runTool("/bin/umount", [path])
}

func runTool(_ executable: String, _ arguments: [String]) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}

@Suite struct ListenerAddressTests {
    /// "0.0.0.0:P" and "[::]:P" side by side: the IPv6 socket takes IPv6 only, so both bind.
    @Test func wildcardIPv4AndIPv6ListenersOnOnePort() async throws {
        var server: TestServer?
        var port = 0
        for _ in 0..<5 where server == nil {
            let candidate = Int.random(in: 20_000...60_000)
            port = candidate
            server = try? await TestServer.start { configuration in
                configuration.listen.smtp = [
                    ListenAddress(host: "0.0.0.0", port: candidate), ListenAddress(host: "::", port: candidate),
                ]
            }
        }
        let running = try #require(server)
        for host in ["127.0.0.1", "::1"] {
            let client = try await SMTPTestClient.connect(host: host, port: port)
            try await client.expect(220)
            try await client.send("QUIT")
        }
        try await running.stop()
    }
}
