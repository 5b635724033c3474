import Accounts
import PetrelConfiguration
import Testing

@Suite struct ConfigurationTests {
    static func parse(_ text: String) throws(ConfigurationError) -> Configuration {
        try ConfigurationLoader.parse(
            text,
            source: "petrel.toml",
            baseDirectory: "/etc/petrel",
            hostname: "host.example"
        )
    }

    /// The example from the README (and issue 2), key for key.
    @Test func theDocumentedExample() throws {
        let configuration = try Self.parse(
            """
            hostname = "mx.example.test"        # EHLO name, Received headers
            data_dir = "/var/lib/petrel"
            domains  = ["example.test"]         # domains we receive mail for
            [listen]
            smtp = ["127.0.0.1:2525"]           # one or more address:port ([::1]:2525 too)
            [limits]
            message_size = 26214400             # bytes; advertised in EHLO SIZE
            recipients = 100                    # per transaction
            connections = 1000                  # total
            connections_per_ip = 20
            """
        )
        #expect(configuration.hostname == "mx.example.test")
        #expect(configuration.dataDirectory == "/var/lib/petrel")
        #expect(configuration.domains == ["example.test"])
        #expect(configuration.listen.smtp == [ListenAddress(host: "127.0.0.1", port: 2525)])
        #expect(configuration.limits.messageSize == 26_214_400)
        #expect(configuration.limits.recipients == 100)
        #expect(configuration.limits.connections == 1000)
        #expect(configuration.limits.connectionsPerIP == 20)
    }

    @Test func everyOtherKey() throws {
        let configuration = try Self.parse(
            """
            data_dir = "data"
            domains = ["Example.TEST", "other.test", "example.test"]
            postmaster = "Hostmaster@example.test"
            recipient_delimiter = "-"
            [listen]
            smtp = ["[::1]:25", "0.0.0.0:2525"]
            [limits]
            errors = 5
            [timeouts]
            command = 600
            data = 120
            data_total = 900
            tls_handshake = 10
            shutdown = 10
            [dns]
            servers = ["127.0.0.1:5353", "::1", "192.0.2.53"]
            timeout = 5
            attempts = 3
            [auth]
            account_delay_max = 60
            [inbound]
            dmarc_reject = "quarantine"
            dmarc_quarantine = "none"
            dmarc_temperror = "accept"
            spf_fail = "reject"
            junk_folder = ".Spam"
            time_limit = 15
            [log]
            level = "debug"
            """
        )
        #expect(configuration.hostname == "host.example")
        #expect(configuration.dataDirectory == "/etc/petrel/data", "relative to the file's directory")
        #expect(configuration.domains == ["example.test", "other.test"])
        #expect(configuration.postmaster == (try AccountAddress(validating: "hostmaster@example.test")))
        #expect(configuration.recipientDelimiter == "-")
        #expect(
            configuration.listen.smtp == [
                ListenAddress(host: "::1", port: 25), ListenAddress(host: "0.0.0.0", port: 2525),
            ]
        )
        #expect(configuration.limits.errors == 5)
        let timeouts = configuration.timeouts
        #expect(
            [timeouts.command, timeouts.data, timeouts.dataTotal, timeouts.tlsHandshake, timeouts.shutdown] == [
                600, 120, 900, 10, 10,
            ]
        )
        #expect(configuration.loginFailures.accountDelayMax == 60)
        #expect(
            configuration.dns.servers == [
                ListenAddress(host: "127.0.0.1", port: 5353), ListenAddress(host: "::1", port: 53),
                ListenAddress(host: "192.0.2.53", port: 53),
            ]
        )
        #expect([configuration.dns.timeout, configuration.dns.attempts] == [5, 3])
        #expect(configuration.logLevel == .debug)
        let mail = configuration.inbound
        #expect(mail.verify && mail.dmarcReject == .quarantine && mail.dmarcQuarantine == .none)
        #expect(!mail.deferOnDMARCTemperror && mail.rejectSPFFail && mail.junkFolder == ".Spam")
        #expect(mail.timeLimit == 15)
        #expect(try Self.parse("[inbound]\nverify = false").inbound.verify == false)
        #expect(try Self.parse("recipient_delimiter = \"\"").recipientDelimiter == nil)
    }

    @Test func defaultsFollowRFC5321Timeouts() {
        let defaults = Configuration.defaults(hostname: "h", workingDirectory: "/srv")
        #expect(defaults.timeouts.command >= 300, "RFC 5321 4.5.3.2.7: at least 5 minutes")
        #expect(defaults.timeouts.tlsHandshake <= 30 && defaults.timeouts.dataTotal >= defaults.timeouts.data)
        #expect(defaults.dataDirectory == "/srv/petrel-data")
        #expect(defaults.domains == ["localhost"])
        #expect(defaults.listen.smtp == [ListenAddress(host: "127.0.0.1", port: 2525)])
        #expect(defaults.listen.submission == [ListenAddress(host: "127.0.0.1", port: 2587)])
        #expect(defaults.listen.submissions == [ListenAddress(host: "127.0.0.1", port: 2465)])
        #expect(defaults.tls == nil, "a self-signed certificate is made")
        #expect(defaults.limits.recipients >= 100, "RFC 5321 4.5.3.1.8")
        #expect(defaults.dns.servers == nil, "/etc/resolv.conf")
        #expect(defaults.inbound == Configuration.InboundPolicy())
        #expect(defaults.inbound.verify && defaults.inbound.dmarcReject == .reject)
        #expect(
            defaults.inbound.dmarcQuarantine == .quarantine
                && defaults.inbound.junkFolder == ".Junk"
        )
        #expect(defaults.inbound.deferOnDMARCTemperror && !defaults.inbound.rejectSPFFail)
    }

    @Test(arguments: [
        ("conections = 3", "conections", "unknown key"),
        ("[limits]\nconections_per_ip = 3", "limits.conections_per_ip", "did you mean 'limits.connections_per_ip'?"),
        ("[limit]\nrecipients = 3", "limit", "did you mean 'limits'?"),
        ("[listen]\nsmtp = [\"127.0.0.1:2525\"]\nlmtp = [\"x\"]", "listen.lmtp", "unknown key"),
        ("[listen]\nsubmission = [\"x\"]", "listen.submission", "is not address:port"),
        ("[tls]\ncertificate = \"cert.pem\"", "tls", "needs both certificate and key"),
        ("[tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\nchain = \"x\"", "tls.chain", "unknown key"),
        ("[auth]\nfailures = 0", "auth.failures", "must be between"),
        ("[inbound]\nverify = \"yes\"", "inbound.verify", "must be true or false"),
        ("[auth]\nverify = \"yes\"", "auth.verify", "must be true or false"),
        (
            "[inbound]\ndmarc_reject = \"bounce\"", "inbound.dmarc_reject",
            "is not one of \"reject\", \"quarantine\", \"none\""
        ),
        ("[inbound]\ndmarc_quarantine = \"reject\"", "inbound.dmarc_quarantine", "is not one of"),
        ("[inbound]\njunk_folder = \"Junk\"", "inbound.junk_folder", "is not a Maildir++ folder name"),
        ("[inbound]\njunk_folder = \".a/b\"", "inbound.junk_folder", "is not a Maildir++ folder name"),
        ("[inbound]\nspf_fail = \"quarantine\"", "inbound.spf_fail", "is not one of"),
        ("[inbound]\ntime_limit = 0", "inbound.time_limit", "must be between"),
        ("hostname = 42", "hostname", "must be a string, not integer"),
        ("domains = \"example.test\"", "domains", "must be an array of strings"),
        ("domains = []", "domains", "at least one domain"),
        ("domains = [\"not a domain\"]", "domains", "not a valid domain"),
        ("hostname = \"bad host\"", "hostname", "not a valid host name"),
        ("[limits]\nmessage_size = -5", "limits.message_size", "must be between"),
        ("[limits]\nmessage_size = \"25M\"", "limits.message_size", "must be an integer"),
        ("[limits]\nrecipients = 0", "limits.recipients", "must be between"),
        ("[listen]\nsmtp = [\"127.0.0.1\"]", "listen.smtp", "is not address:port"),
        ("[listen]\nsmtp = [\"127.0.0.1:99999\"]", "listen.smtp", "is not address:port"),
        ("[listen]\nsmtp = []", "listen", "name at least one of smtp, submission, submissions"),
        ("listen = 5", "listen", "must be a table"),
        ("postmaster = \"someone@elsewhere.example\"", "postmaster", "not in one of the domains"),
        ("recipient_delimiter = \"@\"", "recipient_delimiter", "must be one of"),
        ("[timeouts]\ncommand = 0", "timeouts.command", "must be between"),
        ("[timeouts]\ntls_handshake = 0", "timeouts.tls_handshake", "must be between"),
        ("[timeouts]\ndata_total = 0", "timeouts.data_total", "must be between"),
        ("[log]\nlevel = \"loud\"", "log.level", "not a log level"),
        ("data_dir = \"\"", "data_dir", "must not be empty"),
        ("[dns]\nservers = []", "dns.servers", "name at least one server"),
        ("[dns]\nservers = [\"dns.example:53\"]", "dns.servers", "is not an IP address"),
        ("[dns]\nservers = [\"127.0.0.1:x\"]", "dns.servers", "is not address:port"),
        ("[dns]\ntimeout = 0", "dns.timeout", "must be between"),
        ("[dns]\nattempts = 11", "dns.attempts", "must be between"),
        ("[dns]\nserver = [\"127.0.0.1\"]", "dns.server", "did you mean 'dns.servers'?"),
    ])
    func refusedWithTheKeyNamed(text: String, key: String, message: String) {
        do {
            _ = try Self.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.key == key)
            #expect(error.message.contains(message), "\(error)")
            #expect(error.description.hasPrefix("petrel.toml: \(key): "))
        }
    }

    @Test func syntaxErrorsGiveTheLine() {
        do {
            _ = try Self.parse("hostname = \"mx.example.test\"\ndomains = [\"a\",\n[limits")
            Issue.record("accepted")
        } catch {
            #expect(error.key == nil)
            #expect(error.description.hasPrefix("petrel.toml: line "), "\(error)")
        }
    }

    /// toml++ asserts (SIGABRT) on a table name that starts with a character no key can start with,
    /// and on a closing bracket of the wrong kind in a value; the loader reports them first (found
    /// by the fuzz target for the loader, Fuzz/Config).
    static let badTableName = "a table name must be a bare key (letters, digits, '-', '_') or a quoted string"

    @Test(arguments: [
        ("[=limits]\n", 1, 2, Self.badTableName),
        ("hostname = \"a.example\"\n[ \u{FFFD}limits]\n", 2, 3, Self.badTableName),
        ("[[\u{E9}]]\n", 1, 3, Self.badTableName), ("# [=comment]\n[\n", 2, 2, Self.badTableName),
        ("x = 1\n  [!]", 2, 4, Self.badTableName),
        ("[dns]\nservers = [}}]\n", 2, 12, "'}' does not close an array"),
        ("x = { a = [1, 2} }\n", 1, 16, "'}' does not close an array"),
        ("x = { a = 1 ]\n", 1, 13, "']' does not close an inline table"),
    ])
    func mistakesTOMLWouldAbortOn(text: String, line: Int, column: Int, problem: String) {
        do {
            _ = try Self.parse(text)
            Issue.record("accepted")
        } catch {
            #expect(error.key == nil)
            #expect(error.description == "petrel.toml: line \(line), column \(column): \(problem)")
        }
    }

    /// Brackets that are not table headers (in comments, strings and array values) are left to TOML.
    @Test func bracketsOutsideTableHeaders() throws {
        let configuration = try Self.parse(
            #"""
            hostname = "mx.example.test"   # [=not a header]
            ['limits']
            recipients = 7
            [relay]
            host = "smtp.example.net:587"
            username = "me"
            password = """
            [=still the password]"""
            """#
        )
        #expect(configuration.limits.recipients == 7)
        #expect(configuration.relay?.password == "[=still the password]")
        do {
            _ = try Self.parse("domains = [\n  [=1],\n]\n")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("a table name"), "TOML's own error: \(error)")
        }
    }

    @Test(arguments: [
        ("127.0.0.1:25", "127.0.0.1", 25), ("[::1]:2525", "::1", 2525), ("0.0.0.0:0", "0.0.0.0", 0),
        ("localhost:25", "localhost", 25), ("[2001:db8::1]:587", "2001:db8::1", 587),
    ])
    func listenAddresses(text: String, host: String, port: Int) {
        #expect(ListenAddress(parsing: text) == ListenAddress(host: host, port: port))
        #expect(ListenAddress(parsing: text)?.description == text)
    }

    @Test func addressesWithADefaultPort() {
        #expect(ListenAddress(parsing: "192.0.2.53", defaultPort: 53) == ListenAddress(host: "192.0.2.53", port: 53))
        #expect(
            ListenAddress(parsing: "2001:db8::53", defaultPort: 53) == ListenAddress(host: "2001:db8::53", port: 53)
        )
        #expect(ListenAddress(parsing: "[::1]:5353", defaultPort: 53) == ListenAddress(host: "::1", port: 5353))
        #expect(
            ListenAddress(parsing: "127.0.0.1:5353", defaultPort: 53) == ListenAddress(host: "127.0.0.1", port: 5353)
        )
        for bad in ["127.0.0.1:x", "[::1]", "[::1]:", "", "a b"] {
            #expect(ListenAddress(parsing: bad, defaultPort: 53) == nil, "\(bad)")
        }
    }

    @Test(arguments: [
        "127.0.0.1", ":25", "::1:25", "[::1]", "[::1]25", "[127.0.0.1]:25", "host:port", "a b:25", "h:-1",
    ])
    func badListenAddresses(text: String) {
        #expect(ListenAddress(parsing: text) == nil)
    }

    /// The SPF, DKIM and DMARC keys moved from [auth] (which keeps the login limits) to
    /// [inbound]; the old names still work, each with a warning, and [inbound] has the last word.
    @Test func theOldNamesOfTheInboundKeysStillWork() throws {
        let new = try Self.parse("[inbound]\nverify = false\ndmarc_reject = \"quarantine\"")
        #expect(new.inbound.verify == false && new.inbound.dmarcReject == .quarantine)
        #expect(new.deprecations.isEmpty)
        let old = try Self.parse("[auth]\nfailures = 3\nverify = false\ndmarc_reject = \"quarantine\"")
        #expect(old.inbound == new.inbound)
        #expect(old.loginFailures.failures == 3)
        #expect(
            old.deprecations == [
                "auth.verify is now inbound.verify; the old name will go",
                "auth.dmarc_reject is now inbound.dmarc_reject; the old name will go",
            ]
        )
        let both = try Self.parse("[auth]\ndmarc_reject = \"none\"\n[inbound]\ndmarc_reject = \"quarantine\"")
        #expect(both.inbound.dmarcReject == .quarantine)
        #expect(try Self.parse("[auth]\nfailures = 3").deprecations.isEmpty, "the login keys stay in [auth]")
    }

}
