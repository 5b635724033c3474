/// A message's preview (RFC 8970): the start of what its author wrote, as a mail list shows it
/// under the subject. Pure and bounded: it reads at most `maximumSource` octets of one part.
public enum MessagePreview {
    /// RFC 8970 §3: at most 256 characters.
    public static let maximumLength = 256
    /// Octets of the chosen part read at most: a preview needs a few hundred characters, and a
    /// part of megabytes is not decoded whole for it.
    static let maximumSource = 16_384

    /// The preview of a message, from its first `text/plain` part (else its first `text/html`,
    /// tags and entities dropped); quoted lines (`>`) and whitespace runs are left out. Empty
    /// when the message has no text.
    public static func make(message: [UInt8], structure: MIMEPart) -> String {
        guard let part = Self.textPart(structure, subtype: "plain") ?? Self.textPart(structure, subtype: "html") else {
            return ""
        }
        let end = min(part.end, message.count, part.bodyStart + Self.maximumSource)
        guard part.bodyStart < end else { return "" }
        let raw = message[part.bodyStart..<end]
        let decoded = TransferEncoding.decode(raw, encoding: part.transferEncoding) ?? Array(raw)
        let charset = part.contentType.parameter("charset")?.lowercased() ?? "us-ascii"
        var text = EncodedWords.text(decoded, charset: charset) ?? String(decoding: decoded, as: UTF8.self)
        if part.contentType.subtype == "html" { text = Self.strippingTags(text) }
        return Self.condensed(text)
    }

    /// The first leaf of this subtype, outside attachments (`Content-Disposition: attachment`)
    /// and attached messages.
    static func textPart(_ part: MIMEPart, subtype: String) -> MIMEPart? {
        if part.parts.isEmpty {
            guard part.contentType.type == "text", part.contentType.subtype == subtype else { return nil }
            let disposition = part.header.fields.first { $0.hasName("content-disposition") }?.value.lowercased()
            if disposition?.trimmingPrefix(" ").hasPrefix("attachment") == true { return nil }
            return part
        }
        if part.contentType.isMessage { return nil }
        for child in part.parts {
            if let found = Self.textPart(child, subtype: subtype) { return found }
        }
        return nil
    }

    /// Lines that are not quotes, joined, whitespace runs made one space, cut at a word within
    /// the maximum.
    static func condensed(_ text: String) -> String {
        var words: [Substring] = []
        var length = 0
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix(">") { continue }
            for word in trimmed.split(whereSeparator: {
                $0.isWhitespace || $0.unicodeScalars.first!.properties.generalCategory == .control
            }) {
                let added = word.count + (words.isEmpty ? 0 : 1)
                if length + added > Self.maximumLength {
                    if words.isEmpty { return String(word.prefix(Self.maximumLength)) }
                    return words.joined(separator: " ")
                }
                words.append(word)
                length += added
            }
        }
        return words.joined(separator: " ")
    }

    /// HTML as text: tags dropped (the contents of `style` and `script` too), the common
    /// entities read.
    static func strippingTags(_ html: String) -> String {
        var out = ""
        var index = html.startIndex
        var skipping: String?
        while index < html.endIndex {
            let character = html[index]
            if character == "<" {
                guard let close = html[index...].firstIndex(of: ">") else { break }
                let tag = html[html.index(after: index)..<close].lowercased()
                let name = tag.prefix { $0.isLetter || $0 == "/" }
                if let open = skipping {
                    if name == "/" + open { skipping = nil }
                } else if name == "style" || name == "script" {
                    skipping = String(name)
                } else if ["br", "p", "/p", "div", "/div", "li", "tr", "/tr"].contains(String(name)) {
                    out.append("\n")
                }
                index = html.index(after: close)
                continue
            }
            if skipping == nil { out.append(character) }
            index = html.index(after: index)
        }
        for (entity, value) in [
            ("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&"),
        ] {
            out = out.replacing(entity, with: value)
        }
        return out
    }
}
