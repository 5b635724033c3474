import Accounts
import Foundation
import IMAPCore
import MailCore
import MailStore
import PetrelConfiguration

/// `petrel user` and `petrel alias`: mailboxes, passwords, sender addresses and aliases, changed
/// in the account store, where a running server sees each change at its next lookup.
public struct AccountTool {
    public let configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The account store of the configuration's data directory, both made if missing: opened
    /// only once the arguments are known to be good, so that a typo leaves nothing behind.
    var accounts: AccountStore {
        get throws {
            try createDirectories(self.configuration.dataDirectory)
            return try AccountStore(path: self.configuration.files.accounts)
        }
    }

    // MARK: Mailboxes

    /// - Parameter passwordFromStandardInput: read a password (one line), for SMTP AUTH.
    public func addMailbox(_ text: String, passwordFromStandardInput: Bool) throws {
        let address = try self.servedAddress(text)
        let password = passwordFromStandardInput ? try Self.readNewPassword() : nil
        try self.accounts.addMailbox(address, password: password)
        print("added mailbox \(address); mail goes to \(self.configuration.files.mail)/\(address)/")
    }

    /// Sets a password read from standard input.
    public func setPassword(_ text: String) throws {
        let address = try AccountAddress(validating: text)
        try self.accounts.setPassword(try Self.readNewPassword(), for: address)
        print("password set for \(address)")
    }

    public func listMailboxes() throws {
        for mailbox in try self.accounts.mailboxes() {
            print("\(mailbox.address)\(mailbox.hasPassword ? "" : "\t(no password)")")
        }
    }

    public func removeMailbox(_ text: String) throws {
        let address = try AccountAddress(validating: text)
        let referring = try self.accounts.removeMailbox(address)
        print("removed mailbox \(address); its mail stays in \(self.configuration.files.mail)/\(address)/")
        if !referring.isEmpty {
            print("note: these aliases still name it: \(referring.map(\.description).joined(separator: ", "))")
        }
    }

    // MARK: Sender addresses

    public func addSenderAddress(_ text: String, for userText: String) throws {
        let user = try AccountAddress(validating: userText)
        let address = try SenderAddress(validating: text)
        try self.accounts.addSenderAddress(address, for: user)
        print("\(user) may send as \(address)")
    }

    public func removeSenderAddress(_ text: String, for userText: String) throws {
        let user = try AccountAddress(validating: userText)
        let address = try SenderAddress(validating: text)
        try self.accounts.removeSenderAddress(address, for: user)
        print("\(user) may no longer send as \(address)")
    }

    public func listSenderAddresses(for userText: String) throws {
        let user = try AccountAddress(validating: userText)
        for address in try self.accounts.listSenderAddresses(for: user) { print(address) }
    }

    // MARK: Quotas and IMAP switches

    /// Shows a mailbox's quota and usage, or sets its quota: a size (`5G`, `512 MiB`, octets),
    /// `none` for no limit, `default` for the configuration's (`quota.storage`).
    public func quota(_ text: String, set value: String?) throws {
        let address = try AccountAddress(validating: text)
        let accounts = try self.accounts
        var settings = try accounts.readSettings(for: address)
        if let value {
            switch value.lowercased() {
            case "default": settings.storageQuota = nil
            case "none", "unlimited", "0": settings.storageQuota = 0
            default:
                guard let count = ByteCount.parse(value), count > 0 else {
                    throw ToolError("'\(value)' is not a size: write 5G, 512M, 1073741824, none or default")
                }
                settings.storageQuota = count
            }
            try accounts.setSettings(settings, for: address)
        }
        let limit = self.configuration.quota.limit(own: settings.storageQuota)
        let source = settings.storageQuota == nil ? " (the default, quota.storage)" : ""
        let used = try? MailboxUsage.count(self.configuration.files.mail + "/" + address.description)
        print("\(address): quota \(limit.map(ByteCount.format) ?? "none")\(source)")
        if let used {
            let share =
                limit.map { $0 == 0 ? "" : String(format: " (%.0f%%)", Double(used.bytes) * 100 / Double($0)) } ?? ""
            print("used \(ByteCount.format(used.bytes)) in \(used.messages) messages\(share)")
        }
    }

    /// Shows, or changes, the IMAP capabilities switched off for a user: a switch for a mail
    /// program that misbehaves with one. Names are checked against what Petrel offers.
    public func imapSwitches(_ text: String, disable: [String], enable: [String]) throws {
        let address = try AccountAddress(validating: text)
        let accounts = try self.accounts
        var settings = try accounts.readSettings(for: address)
        let known = IMAPSession.switchable
        for name in disable + enable where !known.contains(where: { $0.uppercased() == name.uppercased() }) {
            throw ToolError(
                "'\(name)' is not an IMAP capability Petrel offers; these can be switched off: \(known.joined(separator: " "))"
            )
        }
        if !disable.isEmpty || !enable.isEmpty {
            var names = Set(settings.disabledIMAPCapabilities.map { $0.uppercased() })
            names.formUnion(disable.map { $0.uppercased() })
            names.subtract(enable.map { $0.uppercased() })
            settings.disabledIMAPCapabilities = names.sorted()
            try accounts.setSettings(settings, for: address)
        }
        let off = settings.disabledIMAPCapabilities
        print(
            "\(address): "
                + (off.isEmpty ? "every IMAP capability is offered" : "switched off: " + off.joined(separator: " "))
        )
    }

    // MARK: Aliases

    /// An alias of one of our domains, to existing mailboxes or aliases of this server.
    public func addAlias(_ text: String, targets texts: [String]) async throws {
        guard !texts.isEmpty else { throw ToolError("name at least one target address") }
        let alias = try self.servedAddress(text)
        let accounts = try self.accounts
        let resolver = self.configuration.recipientResolver
        var targets: [AccountAddress] = []
        for text in texts {
            let target = try AccountAddress(validating: text)
            guard self.configuration.domains.contains(target.domain) else {
                throw AccountError.invalidAliasTarget(
                    text,
                    "\(target.domain) is not one of this server's domains; forwarding to other servers is not supported yet"
                )
            }
            guard target != alias else {
                throw AccountError.invalidAliasTarget(text, "an alias cannot point at itself")
            }
            guard case .mailboxes = try await accounts.resolve(.mailbox(target.mailbox), with: resolver) else {
                throw AccountError.invalidAliasTarget(text, "no mailbox or alias of that name; add it first")
            }
            if !targets.contains(target) { targets.append(target) }
        }
        try accounts.addAlias(alias, targets: targets)
        print("added alias \(alias) -> \(targets.map(\.description).joined(separator: ", "))")
    }

    public func listAliases() throws {
        for alias in try self.accounts.aliases() {
            print("\(alias.address) -> \(alias.targets.map(\.description).joined(separator: ", "))")
        }
    }

    public func removeAlias(_ text: String) throws {
        let alias = try AccountAddress(validating: text)
        try self.accounts.removeAlias(alias)
        print("removed alias \(alias)")
    }

    // MARK: -

    /// Validates an address and checks that its domain is one we serve.
    func servedAddress(_ text: String) throws -> AccountAddress {
        let address = try AccountAddress(validating: text)
        guard self.configuration.domains.contains(address.domain) else {
            throw AccountError.domainNotServed(address.domain, served: self.configuration.domains)
        }
        return address
    }

    /// A password from standard input, hashed for storage (yescrypt and SCRAM-SHA-256).
    static func readNewPassword() throws -> PasswordCredentials {
        let password = readLineFromStandardInput()
        guard !password.isEmpty else { throw ToolError("the password read from standard input is empty") }
        return try PasswordCredentials.make(password: password)
    }
}
