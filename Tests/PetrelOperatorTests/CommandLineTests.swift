import Accounts
import Foundation
import MailCore
import PetrelSystem
import PetrelTestSupport
import ServerTestSupport
import Testing

/// The `petrel` executable, as an operator uses it.
@Suite struct CommandLineTests {
    let directory: String
    let config: String

    init() throws {
        self.directory = try makeTemporaryDirectory()
        self.config = self.directory + "/petrel.toml"
        try """
        hostname = "mx.example.test"
        data_dir = "data"
        domains = ["example.test"]
        [listen]
        smtp = ["127.0.0.1:0"]
        """.write(toFile: self.config, atomically: true, encoding: .utf8)
    }

    func petrel(_ arguments: String..., input: String? = nil) async throws -> PetrelProcess.Result {
        try await PetrelProcess.run(arguments + ["--config", self.config], input: input, directory: self.directory)
    }

    @Test func usersAndAliases() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        var result = try await self.petrel("user", "add", "alice@example.test")
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("added mailbox alice@example.test"))
        result = try await self.petrel("user", "add", "Bob@Example.test", "--password-stdin", input: "s3cret pass\n")
        #expect(result.status == 0, "\(result.standardError)")

        result = try await self.petrel("user", "add", "alice@example.test")
        #expect(result.status != 0)
        #expect(result.standardError.contains("alice@example.test already exists"))
        result = try await self.petrel("user", "add", "carol@elsewhere.example")
        #expect(result.status != 0)
        #expect(result.standardError.contains("elsewhere.example is not one of this server's domains"))
        result = try await self.petrel("user", "add", "not an address")
        #expect(result.status != 0)
        #expect(result.standardError.contains("invalid address"))
        result = try await self.petrel("user", "add", "dave@example.test", "--password-stdin", input: "\n")
        #expect(result.status != 0)
        #expect(result.standardError.contains("password read from standard input is empty"))

        result = try await self.petrel("user", "list")
        #expect(result.standardOutput == "alice@example.test\t(no password)\nbob@example.test\n")

        result = try await self.petrel("alias", "add", "info@example.test", "alice@example.test", "bob+x@example.test")
        #expect(result.status == 0, "\(result.standardError)")
        result = try await self.petrel("alias", "add", "sales@example.test", "nobody@example.test")
        #expect(result.status != 0)
        #expect(result.standardError.contains("no mailbox or alias of that name"))
        result = try await self.petrel("alias", "add", "fwd@example.test", "someone@elsewhere.example")
        #expect(result.status != 0)
        #expect(result.standardError.contains("forwarding to other servers is not supported"))
        result = try await self.petrel("alias", "list")
        #expect(result.standardOutput == "info@example.test -> alice@example.test, bob+x@example.test\n")

        result = try await self.petrel("user", "remove", "alice@example.test")
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("note: these aliases still name it: info@example.test"))
        result = try await self.petrel("user", "remove", "alice@example.test")
        #expect(result.status != 0)
        #expect(result.standardError.contains("does not exist"))
        result = try await self.petrel("alias", "remove", "info@example.test")
        #expect(result.status == 0)
        #expect(try await self.petrel("alias", "list").standardOutput == "")

        // The password was hashed with yescrypt and verifies.
        let accounts = try AccountStore(path: self.directory + "/data/accounts.sqlite")
        #expect(try accounts.mailboxes().map(\.hasPassword) == [true])
    }

    @Test(arguments: [
        (
            "[limits]\nconections_per_ip = 3\n",
            "limits.conections_per_ip: unknown key; did you mean 'limits.connections_per_ip'?"
        ),
        ("[limits]\nmessage_size = \"big\"\n", "limits.message_size: must be an integer, not string"),
        (
            "domains = [\"example.test\"]\n[listen]\nsmtp = [\"nonsense\"]\n",
            "listen.smtp: 'nonsense' is not address:port"
        ),
    ])
    func badConfigurationStopsStartUp(text: String, message: String) async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        try text.write(toFile: self.config, atomically: true, encoding: .utf8)
        let result = try await self.petrel("serve")
        #expect(result.status != 0)
        #expect(result.standardError.contains("petrel.toml: \(message)"), "\(result.standardError)")
    }

    /// `petrel user quota` shows and sets a mailbox's quota; `petrel user imap` its switches.
    @Test func quotasAndIMAPSwitches() async throws {
        #expect(try await self.petrel("user", "add", "alice@example.test").status == 0)
        var result = try await self.petrel("user", "quota", "alice@example.test")
        #expect(result.standardOutput.hasPrefix("alice@example.test: quota none (the default, quota.storage)\n"))
        result = try await self.petrel("user", "quota", "alice@example.test", "512M")
        #expect(result.status == 0 && result.standardOutput.hasPrefix("alice@example.test: quota 512 MiB\n"))
        #expect(result.standardOutput.contains("used 0 B in 0 messages (0%)"), "\(result.standardOutput)")
        result = try await self.petrel("user", "quota", "alice@example.test", "lots")
        #expect(result.status != 0 && result.standardError.contains("'lots' is not a size"))
        result = try await self.petrel("user", "quota", "nobody@example.test")
        #expect(result.status != 0)
        result = try await self.petrel(
            "user",
            "imap",
            "alice@example.test",
            "--disable",
            "qresync",
            "--disable",
            "IDLE"
        )
        #expect(result.standardOutput == "alice@example.test: switched off: IDLE QRESYNC\n")
        result = try await self.petrel("user", "imap", "alice@example.test", "--enable", "IDLE")
        #expect(result.standardOutput == "alice@example.test: switched off: QRESYNC\n")
        result = try await self.petrel("user", "imap", "alice@example.test", "--disable", "X-BOGUS")
        #expect(result.status != 0 && result.standardError.contains("not an IMAP capability Petrel offers"))
    }

    /// The account database holds password hashes and SCRAM keys: 0600 from its first moment,
    /// whatever the umask and even in a data directory someone made with 0755, and narrowed when
    /// an older one is found wider. (`petrel` runs with umask 077; the test's own is wider.)
    @Test func secretFilesAreTheOwnersOnly() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let data = self.directory + "/data"
        #expect(mkdir(data, 0o755) == 0 && chmod(data, 0o755) == 0)
        var result = try await self.petrel(
            "user",
            "add",
            "alice@example.test",
            "--password-stdin",
            input: "pass word\n"
        )
        #expect(result.status == 0, "\(result.standardError)")
        func mode(_ path: String) -> mode_t? {
            var status = stat()
            return stat(path, &status) == 0 ? status.st_mode & 0o777 : nil
        }
        let accounts = data + "/accounts.sqlite"
        #expect(mode(accounts) == 0o600)
        for file in [accounts + "-wal", accounts + "-shm"] where mode(file) != nil {
            #expect(mode(file) == 0o600, "\(file)")
        }
        result = try await self.petrel("dkim", "keygen", "example.test")
        #expect(result.status == 0, "\(result.standardError)")
        #expect(mode(data + "/dkim/example.test/petrel.pem") == 0o600)
        #expect(mode(data + "/dkim/example.test") == 0o700)
        #expect(chmod(accounts, 0o644) == 0)
        result = try await self.petrel("user", "list")
        #expect(result.status == 0)
        #expect(mode(accounts) == 0o600, "narrowed at the next open")
    }

    /// `petrel sendmail -F` puts a name in the From field it adds: a name with a line break
    /// (which would start a field of the sender's choosing) is refused; others are quoted or
    /// RFC 2047-encoded as they need.
    @Test func sendmailNamesCannotAddHeaderFields() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let pickup = self.directory + "/data/pickup"
        func send(name: String) async throws -> (PetrelProcess.Result, String?) {
            let result = try await self.petrel(
                "sendmail",
                "-f",
                "alice@example.test",
                "-F",
                name,
                "bob@example.test",
                input: "Subject: hi\n\nbody\n"
            )
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: pickup)) ?? []).filter {
                $0.hasSuffix(".eml")
            }
            let text = try files.map { try String(contentsOfFile: pickup + "/" + $0, encoding: .utf8) }.first
            for file in files { try FileManager.default.removeItem(atPath: pickup + "/" + file) }
            return (result, text)
        }
        for hostile in ["Eve\r\nReply-To: x@evil.example", "Eve\nBcc: x@evil.example", "Eve\u{1B}[31m", "Eve\rX: y"] {
            let (result, stored) = try await send(name: hostile)
            #expect(result.status == 64, "\(hostile.debugDescription)")
            #expect(result.standardError.contains("-F: a name is one line of text"), "\(result.standardError)")
            #expect(stored == nil, "nothing queued")
        }
        let cases = [
            ("Alice Example", "From: Alice Example <alice@example.test>\r\n"),
            ("Example, Alice \"Al\"", "From: \"Example, Alice \\\"Al\\\"\" <alice@example.test>\r\n"),
            ("Zoë", "From: =?UTF-8?B?Wm/Dqw==?= <alice@example.test>\r\n"),
        ]
        for (name, field) in cases {
            let (result, stored) = try await send(name: name)
            #expect(result.status == 0, "\(result.standardError)")
            #expect(stored?.contains("\r\n" + field) == true, "\(name): \(stored ?? "nothing")")
        }
    }

    @Test func missingConfigurationFile() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let result = try await PetrelProcess.run(["serve", "--config", self.directory + "/absent.toml"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("cannot read the configuration file"))
    }

    @Test func helpListsTheCommands() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let result = try await PetrelProcess.run(["--help"])
        #expect(result.status == 0)
        for command in ["serve", "user", "alias"] {
            #expect(result.standardOutput.contains(command))
        }
        let serveHelp = try await PetrelProcess.run(["serve", "--help"])
        #expect(serveHelp.standardOutput.contains("--config <file>"))
    }

    /// A second server on the same data directory stops with a clear error.
    @Test func oneServerPerDataDirectory() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let first = PetrelProcess(arguments: ["serve", "--config", self.config], directory: self.directory)
        try first.start()
        _ = try await first.listeningPort()
        let second = try await self.petrel("serve")
        #expect(second.status != 0)
        #expect(second.standardError.contains("another petrel server is already using"))
        first.signal(SIGTERM)
        #expect(await first.exit() == 0, "SIGTERM is a clean stop")
        #expect(first.standardError.contains(" stopped"))
    }

    /// An authenticated submission to a remote address is queued, survives kill -9, and is listed
    /// by `petrel queue list`; SIGHUP reloads the certificate.
    @Test func queuedMailSurvivesKill9AndIsListed() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        try """
        hostname = "mx.example.test"
        data_dir = "data"
        domains = ["example.test"]
        [listen]
        submissions = ["127.0.0.1:0"]
        [delivery]
        hold = true
        """.write(toFile: self.config, atomically: true, encoding: .utf8)
        #expect(try await self.petrel("queue", "list").standardOutput == "the queue is empty\n")
        let added = try await self.petrel("user", "add", "alice@example.test", "--password-stdin", input: "pw one\n")
        #expect(added.status == 0)
        let changed = try await self.petrel("user", "password", "alice@example.test", input: "pw two\n")
        #expect(changed.standardOutput == "password set for alice@example.test\n")

        var server = PetrelProcess(arguments: ["serve", "--config", self.config], directory: self.directory)
        try server.start()
        let client = try await SMTPTestClient.connect(
            port: try await server.listeningPort(.submissions),
            implicitTLS: true
        )
        try await client.expect(220)
        try await client.send("EHLO laptop.example.net")
        try await client.expect(250)
        try await client.send("AUTH PLAIN \(Base64.encode(Array("\0alice@example.test\0pw one".utf8)))")
        try await client.expect(535)
        try await client.send("AUTH PLAIN \(Base64.encode(Array("\0alice@example.test\0pw two".utf8)))")
        try await client.expect(235)
        let accepted = try await client.sendMessage(
            from: "alice@example.test",
            to: ["someone@remote.example"],
            content: "Subject: to the queue\r\n\r\nhi\r\n"
        )
        let id = try #require(accepted.text.split(separator: " ").last.map(String.init))
        await client.close()

        server.signal(SIGHUP)
        var reloaded = false
        for _ in 0..<500 where !reloaded {
            try await Task.sleep(for: .milliseconds(20))
            reloaded = server.standardError.contains("reloaded the TLS certificate")
        }
        #expect(reloaded)

        server.signal(SIGKILL)
        _ = await server.exit()
        server = PetrelProcess(arguments: ["serve", "--config", self.config], directory: self.directory)
        try server.start()
        _ = try await server.listeningPort(.submissions)
        let listed = try await self.petrel("queue", "list")
        #expect(listed.standardOutput.hasPrefix("\(id)  "), "\(listed.standardOutput)")
        #expect(
            listed.standardOutput.contains(
                " octets  alice@example.test\n  someone@remote.example  pending  next: now\n"
            )
        )
        server.signal(SIGTERM)
        #expect(await server.exit() == 0)
    }
}
