import MailCore
import NIOCore

/// One item of a `* n FETCH (...)` response (RFC 9051 §7.5.2), with its value.
public enum IMAPFetchValue: Hashable, Sendable {
    case flags([IMAPFlag])
    case uid(UInt32)
    case rfc822Size(UInt64)
    case internalDate(IMAPDateTime)
    case envelope(IMAPEnvelope)
    /// BODYSTRUCTURE (`extensible`) or BODY of a message's structure.
    case bodyStructure(MIMEPart, extensible: Bool)
    /// `BODY[section]<origin>`, `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`: the octets, or nil
    /// for NIL. `origin` is the partial's offset, when one was asked.
    case section(IMAPFetchItem, origin: UInt64?, ArraySlice<UInt8>?)
    /// `BINARY[part]<origin>`: decoded octets, sent as a literal8 when they hold NUL.
    case binary(part: [UInt32], origin: UInt64?, ArraySlice<UInt8>?)
    case binarySize(part: [UInt32], UInt64)
    /// CONDSTORE: `MODSEQ (n)`.
    case modSeq(UInt64)
    /// OBJECTID: `EMAILID (id)`; `THREADID (id)` or `THREADID NIL`.
    case emailID(String)
    case threadID(String?)
    /// PREVIEW: the text, or NIL when it was not worth making now (LAZY).
    case preview(String?)
    /// An item written before (ENVELOPE or BODYSTRUCTURE with its name), as kept.
    case rendered([UInt8])
}

extension IMAPResponseEncoder {
    /// `* n FETCH (item value ...)`. Octets of sections go as literals (quoted when short and
    /// plain), so that any content stays inside the response.
    public func writeFetch(_ number: UInt32, _ values: [IMAPFetchValue], into out: inout ByteBuffer) {
        out.writeStaticString("* ")
        Self.writeDecimal(UInt64(number), into: &out)
        out.writeStaticString(" FETCH (")
        for (index, value) in values.enumerated() {
            if index > 0 { out.writeString(" ") }
            self.writeFetchValue(value, into: &out)
        }
        out.writeString(")\r\n")
    }

    /// A number in decimal, without making a String of it (FETCH writes several per message).
    static func writeDecimal(_ value: UInt64, into out: inout ByteBuffer) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 20 digits, on the stack
        withUnsafeMutableBytes(of: &digits) { buffer in
            var rest = value
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            out.writeBytes(UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }

    /// Whether a name is an atom as it is (`atom` would give it back unchanged).
    static func isAtom(_ name: String) -> Bool {
        var octets = name.utf8[...]
        if octets.first == UInt8(ascii: "\\") { octets = octets.dropFirst() }
        return !octets.isEmpty && octets.allSatisfy(IMAPReader.isAtomChar)
    }

    /// A value as it would be written, when it is the same for every client (ASCII only: no
    /// choice between UTF-8 and a literal); nil otherwise. ENVELOPE and BODYSTRUCTURE are kept
    /// so, and sent again as `.rendered`.
    public func rendering(_ value: IMAPFetchValue) -> [UInt8]? {
        var out = ByteBuffer()
        self.writeFetchValue(value, into: &out)
        let bytes = Array(out.readableBytesView)
        return bytes.allSatisfy({ $0 < 0x80 }) ? bytes : nil
    }

    public func writeFetchValue(_ value: IMAPFetchValue, into out: inout ByteBuffer) {
        switch value {
        case .flags(let flags):
            out.writeStaticString("FLAGS (")
            var first = true
            for flag in flags {
                // Most names are atoms as they are (`\Seen`, `$Junk`): written as they are.
                let atom = Self.isAtom(flag.name) ? flag.name : Self.atom(flag.name)
                guard !atom.isEmpty && atom != "\\" else { continue }
                if !first { out.writeStaticString(" ") }
                out.writeString(atom)
                first = false
            }
            out.writeStaticString(")")
        case .uid(let uid):
            out.writeStaticString("UID ")
            Self.writeDecimal(UInt64(uid), into: &out)
        case .rfc822Size(let size):
            out.writeString("RFC822.SIZE \(size)")
        case .internalDate(let date):
            out.writeString("INTERNALDATE \"" + Self.dateTime(date) + "\"")
        case .envelope(let envelope):
            out.writeString("ENVELOPE ")
            self.writeEnvelope(envelope, into: &out)
        case .bodyStructure(let part, let extensible):
            out.writeString(extensible ? "BODYSTRUCTURE " : "BODY ")
            self.writeBodyStructure(part, extensible: extensible, into: &out)
        case .section(let item, let origin, let bytes):
            out.writeString(Self.sectionName(item, origin: origin) + " ")
            self.writeOctets(bytes, binary: false, into: &out)
        case .binary(let part, let origin, let bytes):
            out.writeString("BINARY[" + part.map(String.init).joined(separator: ".") + "]")
            if let origin { out.writeString("<\(origin)>") }
            out.writeString(" ")
            self.writeOctets(bytes, binary: true, into: &out)
        case .binarySize(let part, let size):
            out.writeString("BINARY.SIZE[" + part.map(String.init).joined(separator: ".") + "] \(size)")
        case .modSeq(let modSeq):
            out.writeStaticString("MODSEQ (")
            Self.writeDecimal(modSeq, into: &out)
            out.writeStaticString(")")
        case .emailID(let id):
            out.writeString("EMAILID (" + Self.objectID(id) + ")")
        case .threadID(let id):
            out.writeString("THREADID " + (id.map { "(" + Self.objectID($0) + ")" } ?? "NIL"))
        case .preview(let text):
            out.writeString("PREVIEW ")
            if let text { self.writeString(text, into: &out) } else { out.writeString("NIL") }
        case .rendered(let bytes):
            out.writeBytes(bytes)
        }
    }

    /// A section's name as the response gives it: no `.PEEK`, the partial as its origin only.
    static func sectionName(_ item: IMAPFetchItem, origin: UInt64?) -> String {
        let name: String
        switch item {
        case .rfc822: return "RFC822"
        case .rfc822Header: return "RFC822.HEADER"
        case .rfc822Text: return "RFC822.TEXT"
        case .bodySection(let section, _, _):
            var spec = section.part.map(String.init).joined(separator: ".")
            if let text = section.text {
                if !spec.isEmpty { spec += "." }
                switch text {
                case .header: spec += "HEADER"
                case .text: spec += "TEXT"
                case .mime: spec += "MIME"
                case .headerFields(let names): spec += "HEADER.FIELDS (" + Self.headerNames(names) + ")"
                case .headerFieldsNot(let names): spec += "HEADER.FIELDS.NOT (" + Self.headerNames(names) + ")"
                }
            }
            name = "BODY[" + spec + "]"
        default:
            name = "BODY[]"
        }
        return origin.map { name + "<\($0)>" } ?? name
    }

    /// Header names as the client asked for them: atoms, or quoted when they are not.
    static func headerNames(_ names: [String]) -> String {
        names.map { name in
            name.utf8.allSatisfy(IMAPReader.isAStringChar) && !name.isEmpty
                ? name : "\"" + name.filter { $0 != "\"" && $0 != "\\" && !$0.isNewline } + "\""
        }.joined(separator: " ")
    }

    /// nstring for sections; for BINARY, a literal8 (`~{n}`) when the octets hold NUL.
    func writeOctets(_ bytes: ArraySlice<UInt8>?, binary: Bool, into out: inout ByteBuffer) {
        guard let bytes else {
            out.writeString("NIL")
            return
        }
        let literal8 = binary && bytes.contains(0)
        out.writeString((literal8 ? "~{" : "{") + "\(bytes.count)}\r\n")
        if literal8 {
            out.writeBytes(bytes)
        } else {
            // A literal carries CHAR8, never NUL: a NUL in a message body goes out as a space.
            out.writeBytes(bytes.contains(0) ? bytes.map { $0 == 0 ? 0x20 : $0 } : Array(bytes))
        }
    }

    /// `date-time`: `"dd-Mon-yyyy hh:mm:ss +zzzz"`, the day space-padded (RFC 9051 §9).
    static func dateTime(_ date: IMAPDateTime) -> String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = date.day < 10 ? " \(date.day)" : "\(date.day)"
        let month = MessageDate.monthNames[max(0, min(11, date.month - 1))]
        let zone = abs(date.zone)
        let year = String(repeating: "0", count: max(0, 4 - String(date.year).count)) + String(date.year)
        return "\(day)-\(month)-\(year) \(two(date.hour)):\(two(date.minute)):\(two(date.second)) "
            + (date.zone < 0 ? "-" : "+") + two(zone / 60) + two(zone % 60)
    }
}
