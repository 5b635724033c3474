import MailCore
import TOMLKit

/// Reads typed values from one TOML table and remembers which keys were read, so that the rest
/// can be reported as unknown.
struct TableReader {
    let table: TOMLTable
    /// "" for the top level, "limits." for [limits].
    let path: String
    let source: String
    private var known: [String] = []
    /// Collects every key asked for, with its table (`limits.recipients`), when a test wants the
    /// list of keys the loader knows.
    let keysAsked: KeysAsked?

    init(table: TOMLTable, path: String, source: String, keysAsked: KeysAsked? = nil) {
        self.table = table
        self.path = path
        self.source = source
        self.keysAsked = keysAsked
    }

    /// The keys a reading asked for (tests: docs/configuration.md must name the same).
    final class KeysAsked {
        var keys: [String] = []
    }

    func error(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(source: self.source, key: self.path + key, message: message)
    }

    /// An error about the table as a whole (`listen: name at least one of ...`).
    func error(_ message: String) -> ConfigurationError {
        ConfigurationError(source: self.source, key: String(self.path.dropLast()), message: message)
    }

    /// Whether the table sets `key` (without counting it as asked for).
    func contains(_ key: String) -> Bool { self.table.contains(key: key) }

    private mutating func value(_ key: String) -> TOMLValueConvertible? {
        self.known.append(key)
        self.keysAsked?.keys.append(self.path + key)
        return self.table[key]
    }

    private func typeError(_ key: String, expected: String, got value: TOMLValueConvertible) -> ConfigurationError {
        self.error(key, "must be \(expected), not \(value.type.description)")
    }

    mutating func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = self.value(key) else { return nil }
        guard let string = value.string else { throw self.typeError(key, expected: "a string", got: value) }
        return string
    }

    mutating func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = self.value(key) else { return nil }
        guard let bool = value.bool else { throw self.typeError(key, expected: "true or false", got: value) }
        return bool
    }

    /// A string that must be one of `choices`.
    mutating func choice(_ key: String, _ choices: [String]) throws(ConfigurationError) -> String? {
        guard let text = try self.string(key) else { return nil }
        guard choices.contains(text) else {
            throw self.error(key, "'\(text)' is not one of " + choices.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        return text
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = self.value(key) else { return nil }
        guard let number = value.int else { throw self.typeError(key, expected: "an integer", got: value) }
        guard range.contains(number) else {
            throw self.error(key, "must be between \(range.lowerBound) and \(range.upperBound), not \(number)")
        }
        return number
    }

    /// A number of octets: an integer, or a string with a binary unit (`"5 GiB"`, `"512M"`).
    mutating func byteCount(_ key: String) throws(ConfigurationError) -> UInt64? {
        guard let value = self.value(key) else { return nil }
        if let number = value.int {
            guard number >= 0 else { throw self.error(key, "must not be negative") }
            return UInt64(number)
        }
        guard let text = value.string else {
            throw self.typeError(key, expected: "a size (an integer, or a string like \"5 GiB\")", got: value)
        }
        guard let count = ByteCount.parse(text) else {
            throw self.error(key, "'\(text)' is not a size; write octets, or a number with K, M, G or T (\"5 GiB\")")
        }
        return count
    }

    mutating func stringArray(_ key: String) throws(ConfigurationError) -> [String]? {
        guard let value = self.value(key) else { return nil }
        guard let array = value.array else { throw self.typeError(key, expected: "an array of strings", got: value) }
        var result: [String] = []
        for element in array {
            guard let string = element.string else {
                throw self.typeError(key, expected: "an array of strings", got: element)
            }
            result.append(string)
        }
        return result
    }

    /// An array of `address:port` strings; an absent key is an empty list. With a default port,
    /// a bare address is accepted too.
    mutating func listenAddresses(_ key: String, defaultPort: Int? = nil) throws(ConfigurationError) -> [ListenAddress]
    {
        var parsed: [ListenAddress] = []
        for text in try self.stringArray(key) ?? [] {
            let address =
                if let defaultPort { ListenAddress(parsing: text, defaultPort: defaultPort) } else {
                    ListenAddress(parsing: text)
                }
            guard let address else {
                throw self.error(key, "'\(text)' is not address:port (use 127.0.0.1:25, [::1]:25 or 0.0.0.0:25)")
            }
            parsed.append(address)
        }
        return parsed
    }

    mutating func table(_ key: String) throws(ConfigurationError) -> TableReader? {
        guard let value = self.value(key) else { return nil }
        guard let table = value.table else { throw self.typeError(key, expected: "a table ([\(key)])", got: value) }
        return TableReader(table: table, path: self.path + key + ".", source: self.source, keysAsked: self.keysAsked)
    }

    /// Fails on the first key that was never asked for, suggesting the closest known one.
    func finish() throws(ConfigurationError) {
        for key in self.table.keys.sorted() where !self.known.contains(key) {
            var message = "unknown key"
            if let suggestion = self.known.min(by: { editDistance($0, key) < editDistance($1, key) }),
                editDistance(suggestion, key) <= 3
            {
                message += "; did you mean '\(self.path)\(suggestion)'?"
            }
            throw self.error(key, message)
        }
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}
