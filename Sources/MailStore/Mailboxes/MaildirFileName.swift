/// A Maildir file name as maildir(5) and Dovecot write it: `base:2,INFO`, where `base` names the
/// message for its whole life (in `new/` it has no `:2,` yet) and INFO holds one letter per
/// flag, in ASCII order. The letters Petrel maps to IMAP flags are the standard five; any other
/// letter (`P` for passed, Dovecot's keyword letters `a`–`z`) belongs to another program and is
/// kept as it is through every rename.
struct MaildirFileName: Hashable, Sendable {
    var base: String
    /// The letters after `:2,`, sorted, each once.
    var letters: [Character]

    /// The standard flags and their letters (maildir(5)).
    static let systemFlags: [(letter: Character, flag: String)] = [
        ("D", "\\Draft"), ("F", "\\Flagged"), ("R", "\\Answered"), ("S", "\\Seen"), ("T", "\\Deleted"),
    ]

    init(base: String, letters: [Character]) {
        self.base = base
        self.letters = Array(Set(letters)).sorted()
    }

    init(_ name: String) {
        let (base, info) = Self.split(name)
        self.init(base: String(base), letters: info?.filter { $0.isASCII && $0.isLetter } ?? [])
    }

    /// The base of a name and what follows its `:2,` (nil without one: experimental semantics
    /// `:1,`, or something else, where the base ends at the first colon and no flag is known).
    /// Scans the octets, for it runs once per file of a folder's scan.
    static func split(_ name: String) -> (base: Substring, info: Substring?) {
        let octets = name.utf8
        var firstColon: String.Index?
        var index = octets.startIndex
        while index != octets.endIndex {
            if octets[index] == UInt8(ascii: ":") {
                firstColon = firstColon ?? index
                let two = octets.index(after: index)
                if two != octets.endIndex && octets[two] == UInt8(ascii: "2") {
                    let comma = octets.index(after: two)
                    if comma != octets.endIndex && octets[comma] == UInt8(ascii: ",") {
                        return (name[..<index], name[octets.index(after: comma)...])
                    }
                }
            }
            index = octets.index(after: index)
        }
        return (name[..<(firstColon ?? name.endIndex)], nil)
    }

    var name: String { self.base + ":2," + String(self.letters) }

    /// The IMAP system flags the letters stand for.
    var flags: [String] {
        Self.systemFlags.filter { self.letters.contains($0.letter) }.map(\.flag)
    }

    /// The same name with these system flags, other programs' letters kept.
    func with(flags: [String]) -> MaildirFileName {
        let system = Set(Self.systemFlags.map(\.letter))
        var letters = self.letters.filter { !system.contains($0) }
        for (letter, flag) in Self.systemFlags where flags.contains(where: { $0.uppercased() == flag.uppercased() }) {
            letters.append(letter)
        }
        return MaildirFileName(base: self.base, letters: letters)
    }

    /// Whether a directory entry is a message (not a dot file or an editor's leftover).
    static func isMessage(_ name: String) -> Bool {
        !name.hasPrefix(".") && !name.isEmpty
    }
}
