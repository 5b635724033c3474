import MailCore

extension IMAPSection {
    /// The octets this section names in `message` (with CRLF line ends, as clients see it)
    /// whose structure is `structure` (RFC 9051 §6.4.5); nil when there is no such part, or a
    /// HEADER or TEXT specifier names a part that is not a message (answered NIL).
    /// A slice of `message`, not a copy, so that a partial costs only what it returns.
    public func content(of message: [UInt8], structure: MIMEPart) -> ArraySlice<UInt8>? {
        guard let part = structure.part(self.part.map(Int.init)) else { return nil }
        switch self.text {
        case nil:
            return self.part.isEmpty ? message[part.start..<part.end] : message[part.bodyStart..<part.end]
        case .mime:
            return self.part.isEmpty ? nil : message[part.start..<part.bodyStart]
        case .header, .headerFields, .headerFieldsNot, .text:
            // Of the message itself, or of a message in a message/rfc822 part.
            let target: MIMEPart
            if self.part.isEmpty {
                target = structure
            } else if part.contentType.isMessage, let inner = part.parts.first {
                target = inner
            } else {
                return nil
            }
            // The whole header, read again from the message (the structure keeps only some fields).
            let header = { HeaderSection(parsing: message[target.start..<target.bodyStart]) }
            switch self.text {
            case .header: return message[target.start..<target.bodyStart]
            case .text: return message[target.bodyStart..<target.end]
            case .headerFields(let names):
                return ArraySlice(Self.fields(header(), keeping: true, names) + [0x0D, 0x0A])
            case .headerFieldsNot(let names):
                return ArraySlice(Self.fields(header(), keeping: false, names) + [0x0D, 0x0A])
            default: return nil
            }
        }
    }

    static func fields(_ header: HeaderSection, keeping: Bool, _ names: [String]) -> [UInt8] {
        header.fields.filter { field in
            !field.name.isEmpty && names.contains { field.hasName($0) } == keeping
        }.flatMap(\.raw)
    }
}

extension IMAPPartial {
    /// The octets of `content` this partial names: from `offset`, at most `length`; none when
    /// the offset is past the end.
    public func apply(to content: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard self.offset < UInt64(content.count) else { return [] }
        let start = content.startIndex + Int(self.offset)
        let end =
            content.startIndex + Int(min(UInt64(content.count), self.offset + min(self.length, UInt64(Int32.max))))
        return content[start..<end]
    }
}
