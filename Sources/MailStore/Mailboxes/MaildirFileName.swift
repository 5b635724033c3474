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
        if let info = name.range(of: ":2,") {
            self.init(
                base: String(name[..<info.lowerBound]),
                letters: name[info.upperBound...].filter { $0.isASCII && $0.isLetter }
            )
        } else if let colon = name.firstIndex(of: ":") {
            // Experimental semantics (":1,"), or something else: no flags we know of.
            self.init(base: String(name[..<colon]), letters: [])
        } else {
            self.init(base: name, letters: [])
        }
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
