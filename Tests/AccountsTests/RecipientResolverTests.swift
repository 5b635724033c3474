import Accounts
import MailCore
import Testing

/// A directory in dictionaries.
struct MemoryDirectory: DirectoryLookup {
    var mailboxes: [String] = []
    var aliases: [String: [String]] = [:]

    func isMailbox(_ address: AccountAddress) -> Bool { self.mailboxes.contains(address.description) }

    func aliasTargets(_ address: AccountAddress) -> [AccountAddress]? {
        self.aliases[address.description].map { $0.map { try! AccountAddress(validating: $0) } }
    }

    func firstMailbox(inDomain domain: String) -> AccountAddress? {
        self.mailboxes.first { $0.hasSuffix("@" + domain) }.map { try! AccountAddress(validating: $0) }
    }
}

@Suite struct RecipientResolverTests {
    let directory = MemoryDirectory(
        mailboxes: ["alice@example.test", "bob@example.test", "carol@other.test"],
        aliases: [
            "info@example.test": ["alice@example.test", "bob@example.test"],
            "team@example.test": ["info@example.test", "carol@other.test"],
            "loop1@example.test": ["loop2@example.test"],
            "loop2@example.test": ["loop1@example.test", "alice@example.test"],
            "dangling@example.test": ["gone@example.test"],
        ]
    )
    let resolver = RecipientResolver(domains: ["example.test", "other.test", "empty.test"])

    func resolve(_ text: String, resolver: RecipientResolver? = nil) throws -> String {
        var parser = PathParser(bytes: Array(text.utf8))
        let path = try parser.parseForwardPath()
        switch try (resolver ?? self.resolver).resolve(path, in: self.directory) {
        case .mailboxes(let list): return list.map(\.description).joined(separator: ",")
        case .unknownUser: return "unknown"
        case .foreignDomain: return "foreign"
        }
    }

    @Test(arguments: [
        ("<alice@example.test>", "alice@example.test"),
        ("<Alice@Example.TEST>", "alice@example.test"),
        ("<\"alice\"@example.test>", "alice@example.test"),
        ("<alice+tag@example.test>", "alice@example.test"),
        ("<alice+tag+more@example.test>", "alice@example.test"),
        ("<+tag@example.test>", "unknown"),
        ("<info@example.test>", "alice@example.test,bob@example.test"),
        ("<info+x@example.test>", "alice@example.test,bob@example.test"),
        ("<team@example.test>", "alice@example.test,bob@example.test,carol@other.test"),
        ("<loop1@example.test>", "alice@example.test"),
        ("<dangling@example.test>", "unknown"),
        ("<nobody@example.test>", "unknown"),
        ("<x@elsewhere.example>", "foreign"),
        ("<x@[192.0.2.1]>", "foreign"),
        ("<victim%elsewhere.example@example.test>", "unknown"),
        ("<\"victim@elsewhere.example\"@example.test>", "unknown"),
        ("<elsewhere.example!victim@example.test>", "unknown"),
        // postmaster: RFC 5321 4.5.1, always accepted.
        ("<postmaster@example.test>", "alice@example.test"),
        ("<PostMaster@example.test>", "alice@example.test"),
        ("<postmaster@other.test>", "carol@other.test"),
        ("<postmaster@empty.test>", "postmaster@empty.test"),
        ("<Postmaster>", "alice@example.test"),
    ])
    func resolution(path: String, expected: String) throws {
        #expect(try self.resolve(path) == expected)
    }

    @Test func configuredPostmaster() throws {
        var resolver = self.resolver
        resolver.postmaster = try AccountAddress(validating: "bob@example.test")
        #expect(try self.resolve("<postmaster@example.test>", resolver: resolver) == "bob@example.test")
        #expect(try self.resolve("<postmaster@empty.test>", resolver: resolver) == "bob@example.test")
        // A mailbox literally named postmaster wins over the configuration.
        var directory = self.directory
        directory.mailboxes.append("postmaster@other.test")
        let path = ForwardPath.mailbox(Mailbox("postmaster@other.test")!)
        #expect(
            try resolver.resolve(path, in: directory)
                == .mailboxes([try AccountAddress(validating: "postmaster@other.test")])
        )
    }

    @Test func subaddressingCanBeTurnedOff() throws {
        var resolver = self.resolver
        resolver.recipientDelimiter = nil
        #expect(try self.resolve("<alice+tag@example.test>", resolver: resolver) == "unknown")
        resolver.recipientDelimiter = "-"
        #expect(try self.resolve("<alice-tag@example.test>", resolver: resolver) == "alice@example.test")
    }
}

@Suite struct AccountAddressTests {
    @Test(arguments: ["alice@example.test", "Alice.Smith@Example.Test", "a+b@example.test", "j\u{f6}s@example.test"])
    func valid(_ text: String) throws {
        let address = try AccountAddress(validating: text)
        #expect(address.description == text.lowercased())
    }

    @Test(arguments: [
        "alice", "@example.test", "alice@", "a/b@example.test", "../x@example.test", ".a@example.test",
        "a..b@example.test",
        "\"quoted\"@example.test", "a b@example.test", "alice@exa mple.test", "alice@-x.test", "alice@[192.0.2.1]",
    ])
    func invalid(_ text: String) {
        #expect(throws: AccountError.self) { try AccountAddress(validating: text) }
    }
}

@Suite struct PasswordHasherTests {
    @Test func hashAndVerify() throws {
        let hash = try PasswordHasher.hash("correct horse battery staple")
        #expect(hash.hasPrefix("$y$"))
        #expect(PasswordHasher.verify("correct horse battery staple", against: hash))
        #expect(!PasswordHasher.verify("correct horse battery stapler", against: hash))
        #expect(!PasswordHasher.verify("", against: hash))
        #expect(try PasswordHasher.hash("same") != PasswordHasher.hash("same"), "salted")
    }

    @Test func verifiesOtherCryptFormats() {
        // A sha512crypt hash of "password" (Python: crypt.crypt("password", "$6$saltsalt$")).
        #expect(
            PasswordHasher.verify(
                "password",
                against:
                    "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
            )
        )
        #expect(!PasswordHasher.verify("password", against: "*"))
        #expect(!PasswordHasher.verify("password", against: ""))
    }
}
