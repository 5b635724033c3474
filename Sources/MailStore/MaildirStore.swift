import NIOConcurrencyHelpers
import PetrelSystem

/// The Maildirs under `DATA_DIR/mail/<address>/`, and delivery into them by hard link.
///
/// A finished, synced message file is linked into `new/` of every recipient mailbox, then each
/// `new/` directory is synced. A file appears in `new/` complete or not at all, because a link is
/// atomic and happens after the data is on disk. All of it blocks: callers run it on the store's
/// thread pool.
public struct MaildirStore: Sendable {
    public let mailRoot: String
    let hostnameForNames: String
    private let knownMaildirs = KnownMaildirs()
    /// Wakes the IMAP sessions of a mailbox that received mail.
    public let changes = MailboxChanges()
    /// Each mailbox's size, for quotas.
    public let usage = MailboxUsage()

    final class KnownMaildirs: Sendable {
        let names = NIOLockedValueBox<Set<String>>([])
    }

    init(mailRoot: String, hostname: String) {
        self.mailRoot = mailRoot
        // maildir(5): "/" and ":" in the host part are written as \057 and \072.
        self.hostnameForNames = hostname.replacingAll("/", with: "\\057").replacingAll(":", with: "\\072")
    }

    /// The Maildir of a mailbox address (already canonical: lower case, validated by Accounts).
    public func path(for address: String) -> String {
        self.mailRoot + "/" + address
    }

    /// Links `file` into `new/` of each mailbox (or of its Maildir++ `folder`, such as ".Junk")
    /// and syncs those directories. On failure, takes back the links it made (the message was not
    /// delivered, so nothing may stay).
    /// - Returns: the path of the file in each mailbox.
    func deliver(
        _ file: String,
        id: String,
        size: Int,
        to mailboxes: [String],
        folder: String? = nil
    )
        throws(StoreError) -> [String]
    {
        let links = try self.link(file, id: id, size: size, to: mailboxes, folder: folder)
        do {
            for directory in links.directories { try POSIXFile.syncDirectory(directory) }
        } catch {
            for destination in links.paths { POSIXFile.remove(destination) }
            throw error
        }
        for mailbox in mailboxes {
            self.usage.added(mailbox, bytes: size)
            self.changes.delivered(mailbox)
        }
        return links.paths
    }

    /// Links `file` into `new/` of each mailbox (or of its `folder`), without syncing: the
    /// caller syncs `directories` (a group commit syncs each once for many messages). On failure,
    /// takes back the links it made.
    func link(
        _ file: String,
        id: String,
        size: Int,
        to mailboxes: [String],
        folder: String? = nil
    ) throws(StoreError) -> (paths: [String], directories: [String]) {
        let name = self.uniqueName(id: id, size: size)
        var linked: [String] = []
        var directories: [String] = []
        do {
            for mailbox in mailboxes {
                let destination = try self.link(file, into: mailbox, folder: folder, name: name)
                linked.append(destination)
                directories.append(String(destination[..<destination.lastIndex(of: "/")!]))
            }
            return (linked, directories)
        } catch {
            for destination in linked { POSIXFile.remove(destination) }
            throw error
        }
    }

    /// `time.M<usec>P<pid>Q<id>.<host>,S=<size>`: unique (the queue id is), and with the size
    /// Dovecot reads without a stat.
    /// Without a size (a message not yet written), the name has no `,S=`: readers then stat it.
    func uniqueName(id: String, size: Int? = nil) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let name = "\(now.tv_sec).M\(now.tv_nsec / 1000)P\(getpid())Q\(id).\(self.hostnameForNames)"
        return size.map { name + ",S=\($0)" } ?? name
    }

    private func link(
        _ file: String,
        into mailbox: String,
        folder: String?,
        name: String
    ) throws(StoreError)
        -> String
    {
        let root = try self.ensureMaildir(for: mailbox, folder: folder)
        let destination = root + "/new/" + name
        do {
            try POSIXFile.link(file, destination)
        } catch .io(_, _, ENOENT) {
            // The Maildir was removed behind our back (an operator cleaning up): make it again.
            self.knownMaildirs.names.withLockedValue { names in
                names = names.filter { $0 != mailbox && !$0.hasPrefix(mailbox + "/") }
            }
            _ = try self.ensureMaildir(for: mailbox, folder: folder)
            try POSIXFile.link(file, destination)
        }
        return destination
    }

    /// What a mailbox holds (blocking: a listing of its Maildir when no recent count is kept).
    public func usage(of address: String) throws(StoreError) -> StorageUsage {
        try self.usage.usage(of: address, root: self.path(for: address))
    }

    /// Forgets that a folder was made, so the next `ensureMaildir` looks at the disk again (an
    /// IMAP client deleted or renamed it).
    func forget(_ address: String, folder: String) {
        _ = self.knownMaildirs.names.withLockedValue { $0.remove(address + "/" + folder) }
    }

    /// Creates `mail/<address>/{tmp,new,cur}` once, syncing parents so the directories survive a
    /// crash; with a `folder` (".Junk"), that Maildir++ folder inside it too, marked with the
    /// `maildirfolder` file Dovecot and Courier write.
    func ensureMaildir(for address: String, folder: String? = nil) throws(StoreError) -> String {
        guard !address.isEmpty, !address.contains("/"), !address.hasPrefix("."), address.utf8.count <= 255 else {
            throw StoreError.invalidMailboxName(address)
        }
        if let folder {
            guard folder.hasPrefix("."), folder.count > 1, !folder.contains("/"), folder != "..",
                folder.utf8.count <= 255
            else { throw StoreError.invalidMailboxName(folder) }
        }
        let mailbox = self.path(for: address)
        let root = folder.map { mailbox + "/" + $0 } ?? mailbox
        let key = folder.map { address + "/" + $0 } ?? address
        if self.knownMaildirs.names.withLockedValue({ $0.contains(key) }) { return root }
        if try POSIXFile.makeDirectory(mailbox) { try POSIXFile.syncDirectory(self.mailRoot) }
        if folder != nil, try POSIXFile.makeDirectory(root) {
            try POSIXFile.syncDirectory(mailbox)
            let marker = try POSIXFile.createExclusive(root + "/maildirfolder")
            try POSIXFile.closeFile(marker, path: root + "/maildirfolder")
        }
        var created = false
        for sub in ["tmp", "new", "cur"] {
            if try POSIXFile.makeDirectory(root + "/" + sub) { created = true }
        }
        if created { try POSIXFile.syncDirectory(root) }
        self.knownMaildirs.names.withLockedValue { _ = $0.insert(key) }
        return root
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
