/// Finds the mistakes toml++ 3 (under TOMLKit) asserts on instead of reporting, which would end
/// `petrel` with SIGABRT; the fuzz target for the loader found them: a table name that starts
/// with a character no key can start with (`[=x]`, `[é]`), and a closing bracket of the wrong
/// kind in a value (`[}`). A small lexer, so that brackets inside strings and comments are left
/// alone.
enum TOMLPreCheck {
    static let badTableName = "a table name must be a bare key (letters, digits, '-', '_') or a quoted string"

    static func firstProblem(in text: String) -> (line: Int, column: Int, problem: String)? {
        let scalars = Array(text.unicodeScalars)
        var line = 1
        var lineStart = 0
        var index = 0
        var open: [Unicode.Scalar] = []  // brackets and braces open in a value
        var atLineStart = true  // only white space so far on this line, outside any value

        func starts(_ prefix: String, at position: Int) -> Bool {
            let prefix = Array(prefix.unicodeScalars)
            return position + prefix.count <= scalars.count
                && Array(scalars[position..<position + prefix.count]) == prefix
        }
        /// Moves past a string that starts at `index`, counting its line breaks.
        func skipString() {
            let quote = scalars[index]
            let multiLine = starts(String(repeating: String(quote), count: 3), at: index)
            let closing = multiLine ? String(repeating: String(quote), count: 3) : String(quote)
            index += multiLine ? 3 : 1
            while index < scalars.count {
                if quote == "\"" && scalars[index] == "\\" {
                    index += 2
                    continue
                }
                if starts(closing, at: index) {
                    index += closing.unicodeScalars.count
                    // A multi-line string may end with up to two more quotes inside it.
                    while multiLine && index < scalars.count && scalars[index] == quote { index += 1 }
                    return
                }
                if scalars[index] == "\n" {
                    if !multiLine { return }
                    line += 1
                    lineStart = index + 1
                }
                index += 1
            }
        }

        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\n":
                line += 1
                lineStart = index + 1
                atLineStart = open.isEmpty
                index += 1
            case " ", "\t", "\r":
                index += 1
            case "#":
                while index < scalars.count && scalars[index] != "\n" { index += 1 }
            case "\"", "'":
                atLineStart = false
                skipString()
            case "[" where atLineStart:
                atLineStart = false
                index += 1
                if index < scalars.count && scalars[index] == "[" { index += 1 }
                while index < scalars.count && (scalars[index] == " " || scalars[index] == "\t") { index += 1 }
                guard index < scalars.count else { return nil }
                let first = scalars[index]
                let bare =
                    first.isASCII
                    && (first.properties.isAlphabetic || ("0"..."9").contains(first) || first == "-" || first == "_")
                if !bare && first != "\"" && first != "'" && first != "]" {
                    return (line, index - lineStart + 1, Self.badTableName)
                }
            case "[", "{":
                atLineStart = false
                open.append(scalar)
                index += 1
            case "]", "}":
                if let last = open.popLast(), (last == "[") != (scalar == "]") {
                    let what = last == "[" ? "an array" : "an inline table"
                    return (line, index - lineStart + 1, "'\(scalar)' does not close \(what)")
                }
                index += 1
            default:
                atLineStart = false
                index += 1
            }
        }
        return nil
    }
}
