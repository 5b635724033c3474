import NIOConcurrencyHelpers
import PetrelSystem

/// What a mailbox holds, for quotas (RFC 9208's STORAGE and MESSAGE; SMTP's 452 4.2.2).
public struct StorageUsage: Hashable, Sendable {
    /// Octets of every message file in every folder, as the disk holds them (LF line ends).
    public var bytes: UInt64
    public var messages: Int

    public init(bytes: UInt64, messages: Int) {
        self.bytes = bytes
        self.messages = messages
    }
}

/// Each mailbox's usage, counted from its Maildir and kept up to date cheaply.
///
/// Counting is a listing of every folder's `new/` and `cur/`: a file's size comes from the
/// `,S=` of its name (what Petrel's and Dovecot's deliveries write) or else from `stat`. The
/// count is then kept: a delivery adds its size, an IMAP change that adds messages adds theirs;
/// one that removes any (EXPUNGE, MOVE) makes the next question count again, and so does the
/// passing of `maximumAge`, for what other programs (Dovecot, mutt) changed unseen.
public final class MailboxUsage: Sendable {
    /// Seconds a count is trusted for.
    public static let maximumAge: Int64 = 300

    private struct Entry {
        var usage: StorageUsage
        var countedAt: Int64
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])

    public init() {}

    /// The usage of the mailbox whose Maildir is `root` (blocking: a listing when the count is
    /// missing or old).
    func usage(of address: String, root: String) throws(StoreError) -> StorageUsage {
        let now = Int64(time(nil))
        if let entry = self.entries.withLockedValue({ $0[address] }), now - entry.countedAt < Self.maximumAge {
            return entry.usage
        }
        let counted = try Self.count(root)
        self.entries.withLockedValue { $0[address] = Entry(usage: counted, countedAt: now) }
        return counted
    }

    /// A delivery or an APPEND made the mailbox larger.
    func added(_ address: String, bytes: Int, messages: Int = 1) {
        self.entries.withLockedValue { entries in
            entries[address]?.usage.bytes &+= UInt64(max(0, bytes))
            entries[address]?.usage.messages += messages
        }
    }

    /// Messages went: count again when next asked.
    func forget(_ address: String) {
        _ = self.entries.withLockedValue { $0.removeValue(forKey: address) }
    }

    /// Counts a Maildir: INBOX and every Maildir++ folder (`.name`), not a folder being deleted.
    public static func count(_ root: String) throws(StoreError) -> StorageUsage {
        var usage = StorageUsage(bytes: 0, messages: 0)
        var folders = [root]
        do throws(StoreError) {
            for entry in try POSIXFile.listDirectory(root)
            where entry.hasPrefix(".") && entry != "." && entry != ".." && !entry.hasPrefix(MailAccount.deletedPrefix) {
                folders.append(root + "/" + entry)
            }
        } catch .io(_, _, ENOENT) {
            return usage
        }
        for folder in folders {
            for sub in ["new", "cur"] {
                let directory = folder + "/" + sub
                let names: [String]
                do throws(StoreError) {
                    names = try POSIXFile.listDirectory(directory)
                } catch .io(_, _, ENOENT), .io(_, _, ENOTDIR) {
                    continue
                }
                for name in names where MaildirFileName.isMessage(name) {
                    // A size no message has (another program's name) is not believed: stat.
                    if let size = Self.sizeInName(name), size < 1 << 40 {
                        usage.bytes = usage.bytes &+ size
                    } else if let size = MaildirFiles.fileSize(directory + "/" + name) {
                        usage.bytes = usage.bytes &+ size
                    } else {
                        continue  // gone meanwhile
                    }
                    usage.messages += 1
                }
            }
        }
        return usage
    }

    /// `,S=<octets>` in a Maildir name's base (before `:2,`), as maildir++ and Dovecot write it.
    static func sizeInName(_ name: String) -> UInt64? {
        let base = name.split(separator: ":", maxSplits: 1).first ?? Substring(name)
        for field in base.split(separator: ",").dropFirst() where field.hasPrefix("S=") {
            return UInt64(field.dropFirst(2))
        }
        return nil
    }
}
