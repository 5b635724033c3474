import Foundation
import Logging
import NIOConcurrencyHelpers
import PetrelConfiguration
import PetrelSystem

/// One line per event on standard error, in logfmt: `time level msg key=value ...`, easy to read
/// and to grep, and to parse by log collectors. Keys that identify a session or a message come
/// first; values with spaces or quotes are quoted.
public struct LogfmtHandler: LogHandler {

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String
    public let format: LogFormat
    private static let output = NIOLock()

    /// Keys printed first, in this order.
    static let leadingKeys = ["session", "id", "client", "helo", "from", "to"]

    public init(label: String, level: Logger.Level, format: LogFormat = .text) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = self.metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let line =
            self.format == .json
            ? Self.json(level: event.level, message: "\(event.message)", metadata: all, timestamp: Self.timestamp())
            : Self.format(level: event.level, message: "\(event.message)", metadata: all, timestamp: Self.timestamp())
        // One write(2) per line, under a lock, so lines from different threads never interleave.
        Self.output.withLock {
            var remaining = Array(line.utf8)[...]
            while !remaining.isEmpty {
                let written = remaining.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                remaining = remaining.dropFirst(written)
            }
        }
    }

    static func format(level: Logger.Level, message: String, metadata: Logger.Metadata, timestamp: String) -> String {
        var line = "\(timestamp) \(level) \(quoted(message))"
        for key in Self.orderedKeys(metadata) {
            line += " \(key)=\(quoted("\(metadata[key]!)"))"
        }
        return line + "\n"
    }

    /// `{"time":"...","level":"info","msg":"...","session":"1",...}`: the same keys, in the same
    /// order, every value a string.
    static func json(level: Logger.Level, message: String, metadata: Logger.Metadata, timestamp: String) -> String {
        var line =
            "{\"time\":\(jsonString(timestamp)),\"level\":\(jsonString("\(level)")),\"msg\":\(jsonString(message))"
        for key in Self.orderedKeys(metadata) {
            line += ",\(jsonString(key)):\(jsonString("\(metadata[key]!)"))"
        }
        return line + "}\n"
    }

    static func orderedKeys(_ metadata: Logger.Metadata) -> [String] {
        metadata.keys.sorted { a, b in
            let ia = leadingKeys.firstIndex(of: a) ?? Int.max
            let ib = leadingKeys.firstIndex(of: b) ?? Int.max
            return ia != ib ? ia < ib : a < b
        }
    }

    static func jsonString(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output + "\""
    }

    static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" }
        let clean = String(value.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        guard needsQuotes else { return clean }
        return "\"" + clean.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            + "\""
    }

    /// UTC, millisecond precision: 2026-11-29T09:16:08.123Z.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}
