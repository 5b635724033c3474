import MailCore
import NIOCore

extension IMAPResponseEncoder {
    /// FETCH's BODYSTRUCTURE (`extensible`) or BODY (RFC 9051 §7.5.2) of a part whose offsets
    /// are into `message`, the message with CRLF line ends as clients see it (the sizes and line
    /// counts are of that form).
    public func writeBodyStructure(_ part: MIMEPart, extensible: Bool, into out: inout ByteBuffer) {
        out.writeString("(")
        if part.contentType.isMultipart {
            if part.parts.isEmpty {
                // `1*body`: a multipart whose parts could not be found shows one empty text part.
                self.writeBodyStructure(Self.emptyPart(at: part.end), extensible: extensible, into: &out)
            }
            for child in part.parts { self.writeBodyStructure(child, extensible: extensible, into: &out) }
            out.writeString(" ")
            self.writeString(part.contentType.subtype, into: &out)
            if extensible {
                out.writeString(" ")
                self.writeParameters(part.contentType.parameters, into: &out)
                self.writeExtensions(part, md5: false, into: &out)
            }
        } else {
            self.writeString(part.contentType.type, into: &out)
            out.writeString(" ")
            self.writeString(part.contentType.subtype, into: &out)
            out.writeString(" ")
            self.writeParameters(part.contentType.parameters, into: &out)
            out.writeString(" ")
            self.writeNString(Self.fieldValue(part.header, "Content-ID"), into: &out)
            out.writeString(" ")
            self.writeNString(Self.fieldValue(part.header, "Content-Description"), into: &out)
            out.writeString(" ")
            self.writeString(part.transferEncoding.uppercased(), into: &out)
            out.writeString(" \(part.bodySize)")
            if part.contentType.isMessage {
                // body-type-msg needs an envelope and a body even when no message could be read
                // (an empty part, nesting or part limits reached): empty ones stand in.
                let message = part.parts.first ?? Self.emptyPart(at: part.end)
                out.writeString(" ")
                self.writeEnvelope(IMAPEnvelope(header: message.header), into: &out)
                out.writeString(" ")
                self.writeBodyStructure(message, extensible: extensible, into: &out)
                out.writeString(" \(part.lines)")
            } else if part.contentType.type == "text" {
                out.writeString(" \(part.lines)")
            }
            if extensible { self.writeExtensions(part, md5: true, into: &out) }
        }
        out.writeString(")")
    }

    static func emptyPart(at offset: Int) -> MIMEPart {
        MIMEPart(
            start: offset,
            bodyStart: offset,
            end: offset,
            header: HeaderSection(fields: []),
            contentType: .textPlain,
            transferEncoding: "7bit",
            lines: 0,
            parts: []
        )
    }

    /// `body-fld-param`: `("name" "value" ...)`, or NIL when there are none.
    func writeParameters(_ parameters: [MIMEParameter], into out: inout ByteBuffer) {
        guard !parameters.isEmpty else {
            out.writeString("NIL")
            return
        }
        out.writeString("(")
        for (index, parameter) in parameters.enumerated() {
            if index > 0 { out.writeString(" ") }
            self.writeString(parameter.name, into: &out)
            out.writeString(" ")
            self.writeString(parameter.value, into: &out)
        }
        out.writeString(")")
    }

    /// The extension data: MD5 (single parts), disposition, language, location.
    func writeExtensions(_ part: MIMEPart, md5: Bool, into out: inout ByteBuffer) {
        if md5 {
            out.writeString(" ")
            self.writeNString(Self.fieldValue(part.header, "Content-MD5"), into: &out)
        }
        out.writeString(" ")
        if let value = part.header.fields(named: "Content-Disposition").first?.value,
            let disposition = MIMEContentType.parameterized(value)
        {
            out.writeString("(")
            self.writeString(disposition.token, into: &out)
            out.writeString(" ")
            self.writeParameters(disposition.parameters, into: &out)
            out.writeString(")")
        } else {
            out.writeString("NIL")
        }
        out.writeString(" ")
        let languages = (part.header.fields(named: "Content-Language").first?.value ?? "")
            .split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
            .prefix(32)
        if languages.isEmpty {
            out.writeString("NIL")
        } else {
            out.writeString("(")
            for (index, language) in languages.enumerated() {
                if index > 0 { out.writeString(" ") }
                self.writeString(String(language), into: &out)
            }
            out.writeString(")")
        }
        out.writeString(" ")
        self.writeNString(Self.fieldValue(part.header, "Content-Location"), into: &out)
    }

    /// A field's value, unfolded and trimmed; nil when the field is absent.
    static func fieldValue(_ header: HeaderSection, _ name: String) -> [UInt8]? {
        header.fields(named: name).first.map { Array($0.value.utf8) }
    }
}
