import MailCore

/// A DKIM-Signature header field (RFC 6376 §3.5), checked as §6.1.1 asks before any key is
/// fetched.
public struct DKIMSignature: Hashable, Sendable {
    public enum Algorithm: String, Hashable, Sendable {
        case rsaSHA256 = "rsa-sha256"
        case ed25519SHA256 = "ed25519-sha256"
    }

    public enum Canonicalization: String, Hashable, Sendable {
        case simple, relaxed
    }

    public var algorithm: Algorithm
    public var headerCanonicalization: Canonicalization
    public var bodyCanonicalization: Canonicalization
    /// d=, lower case.
    public var domain: String
    /// s=.
    public var selector: String
    /// i=, or "@" + d= when absent.
    public var identity: String
    /// h=, lower case, in order.
    public var signedHeaders: [String]
    public var bodyHash: [UInt8]
    public var signature: [UInt8]
    /// The b= value as written (without white space): Authentication-Results quotes its start.
    public var signatureText: String
    /// l=: how many octets of the canonical body are signed; nil for all of it.
    public var bodyLength: Int?
    public var timestamp: Int?
    public var expiration: Int?
    /// The field with the value of b= removed, as it enters the header hash (§3.7).
    public var fieldWithoutSignature: [UInt8]

    /// The body hash this signature needs: same canonicalization and length, same hash.
    public var bodyHashRequest: BodyHashRequest {
        BodyHashRequest(canonicalization: self.bodyCanonicalization, length: self.bodyLength)
    }

    /// What could be read of a signature that fails the checks: enough for the result line.
    public struct Invalid: Error, Hashable, Sendable {
        public var reason: String
        public var domain: String?
        public var selector: String?
        public var signatureText: String?
    }

    /// - Parameter now: Unix seconds, for x= (expiry).
    public init(field: HeaderField, now: Int) throws(Invalid) {
        // A field always has a colon after its name; one made without (fuzzing found it) is read
        // whole, never past its end.
        let valueStart = field.raw.firstIndex(of: 0x3A).map { $0 + 1 } ?? field.raw.startIndex
        let tags: TagList
        do {
            tags = try TagList(parsing: field.raw[valueStart...])
        } catch {
            throw Invalid(reason: "\(error)")
        }
        let domain = tags["d"].map { $0.asciiLowercased }
        let selector = tags["s"]
        let signatureText = tags["b"]?.withoutWhitespace
        func invalid(_ reason: String) -> Invalid {
            Invalid(reason: reason, domain: domain, selector: selector, signatureText: signatureText)
        }
        for required in ["v", "a", "b", "bh", "d", "h", "s"] where tags[required] == nil {
            throw invalid("the signature has no \(required)= tag")
        }
        guard tags["v"] == "1" else { throw invalid("unsupported signature version v=\(tags["v"] ?? "")") }
        switch tags["a"]?.asciiLowercased {
        case "rsa-sha256": self.algorithm = .rsaSHA256
        case "ed25519-sha256": self.algorithm = .ed25519SHA256
        case "rsa-sha1": throw invalid("rsa-sha1 signatures are not accepted (RFC 8301)")
        default: throw invalid("unknown algorithm a=\(tags["a"] ?? "")")
        }
        let canonicalization = (tags["c"] ?? "simple/simple").asciiLowercased.split(
            separator: "/",
            omittingEmptySubsequences: false
        )
        guard (1...2).contains(canonicalization.count),
            let header = Canonicalization(rawValue: String(canonicalization[0])),
            let body = Canonicalization(rawValue: canonicalization.count == 2 ? String(canonicalization[1]) : "simple")
        else { throw invalid("unknown canonicalization c=\(tags["c"] ?? "")") }
        self.headerCanonicalization = header
        self.bodyCanonicalization = body
        guard let domain, let selector, DKIMSignature.isDomainName(domain), DKIMSignature.isDomainName(selector) else {
            throw invalid("d= or s= is not a domain name")
        }
        self.domain = domain
        self.selector = selector
        self.identity = tags["i"] ?? "@" + domain
        guard let at = self.identity.lastIndex(of: "@") else { throw invalid("i= has no @") }
        let identityDomain = String(self.identity[self.identity.index(after: at)...]).asciiLowercased
        guard identityDomain == domain || identityDomain.hasSuffix("." + domain) else {
            throw invalid("i= \(self.identity) is not in d= \(domain)")
        }
        self.signedHeaders = tags["h"]!.split(separator: ":").map { $0.trimmingWhitespace().asciiLowercased }
        guard self.signedHeaders.contains("from") else { throw invalid("h= does not include From") }
        guard let bodyHash = Base64.decode(tags["bh"]!.withoutWhitespace), !bodyHash.isEmpty else {
            throw invalid("bh= is not base64")
        }
        guard let signatureText, let signature = Base64.decode(signatureText), !signature.isEmpty else {
            throw invalid("b= is not base64")
        }
        self.bodyHash = bodyHash
        self.signature = signature
        self.signatureText = signatureText
        if let query = tags["q"], !query.split(separator: ":").contains(where: { $0.trimmingWhitespace() == "dns/txt" })
        {
            throw invalid("unsupported query method q=\(query)")
        }
        func number(_ name: String) throws(Invalid) -> Int? {
            guard let text = tags[name] else { return nil }
            guard !text.isEmpty, text.utf8.count <= 76, text.utf8.allSatisfy(isDigit) else {
                throw invalid("\(name)= is not a number")
            }
            return Int(text.prefix(18))
        }
        self.bodyLength = try number("l")
        self.timestamp = try number("t")
        self.expiration = try number("x")
        if let expiration = self.expiration {
            if let timestamp = self.timestamp, expiration < timestamp { throw invalid("x= is before t=") }
            if expiration < now { throw invalid("the signature expired (x=\(expiration))") }
        }
        // §3.7: the field as it is, with the value of b= (and nothing else) taken out.
        let bRange = tags.tags.first { $0.name == "b" }!.range
        var stripped = Array(field.raw)
        stripped.removeSubrange((valueStart + bRange.lowerBound)..<(valueStart + bRange.upperBound))
        self.fieldWithoutSignature = stripped
    }

    /// Labels of letters, digits, hyphens and underscores (and non-ASCII), within DNS limits.
    public static func isDomainName(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return !text.isEmpty && text.utf8.count <= 253
            && labels.allSatisfy { label in
                !label.isEmpty && label.utf8.count <= 63
                    && label.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == 0x2D || $0 == 0x5F || $0 >= 0x80 }
            }
    }
}

/// One body hash to compute while the message streams by.
public struct BodyHashRequest: Hashable, Sendable {
    public var canonicalization: DKIMSignature.Canonicalization
    public var length: Int?

    public init(canonicalization: DKIMSignature.Canonicalization, length: Int? = nil) {
        self.canonicalization = canonicalization
        self.length = length
    }
}
