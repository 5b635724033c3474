import DNSCore
import MailCore

/// RFC 8601 §2.7.1 results for one signature.
public enum DKIMResult: String, Hashable, Sendable {
    case none, pass, fail, policy, neutral, temperror, permerror
}

/// The verdict on one DKIM-Signature, with what Authentication-Results reports about it.
public struct DKIMVerdict: Hashable, Sendable {
    public var result: DKIMResult
    /// header.d, header.s, header.i: as far as the signature could be read.
    public var domain: String?
    public var selector: String?
    public var identity: String?
    /// The b= value; header.b quotes its first characters (RFC 6008).
    public var signatureText: String?
    public var algorithm: DKIMSignature.Algorithm?
    /// l=: only this much of the body was signed (reported, because text can be appended).
    public var bodyLength: Int?
    /// The key says the domain is testing DKIM (t=y).
    public var testing = false
    /// "signature verified with a 2048-bit RSA key", "body hash mismatch", "no key at ...".
    public var reason: String

    public init(
        result: DKIMResult,
        domain: String? = nil,
        selector: String? = nil,
        identity: String? = nil,
        signatureText: String? = nil,
        algorithm: DKIMSignature.Algorithm? = nil,
        bodyLength: Int? = nil,
        testing: Bool = false,
        reason: String
    ) {
        self.result = result
        self.domain = domain
        self.selector = selector
        self.identity = identity
        self.signatureText = signatureText
        self.algorithm = algorithm
        self.bodyLength = bodyLength
        self.testing = testing
        self.reason = reason
    }
}

/// DKIM verification (RFC 6376 §6, RFC 8463, RFC 8301): each signature of a scanned message
/// checked against its key in DNS.
public struct DKIMVerifier: Sendable {
    public var resolver: any DNSResolving

    public init(resolver: any DNSResolving) {
        self.resolver = resolver
    }

    public func verify(_ message: MessageScanner.Scanned) async -> [DKIMVerdict] {
        guard let header = message.header else { return [] }
        var verdicts: [DKIMVerdict] = []
        for signature in message.signatures {
            switch signature {
            case .failure(let invalid):
                verdicts.append(
                    DKIMVerdict(
                        result: .permerror,
                        domain: invalid.domain,
                        selector: invalid.selector,
                        signatureText: invalid.signatureText,
                        reason: invalid.reason
                    )
                )
            case .success(let signature):
                verdicts.append(await self.verify(signature, header: header, bodyHashes: message.bodyHashes))
            }
        }
        return verdicts
    }

    private func verify(
        _ signature: DKIMSignature,
        header: HeaderSection,
        bodyHashes: [BodyHashRequest: (hash: [UInt8], canonicalLength: Int)]
    ) async -> DKIMVerdict {
        var verdict = DKIMVerdict(
            result: .permerror,
            domain: signature.domain,
            selector: signature.selector,
            identity: signature.identity,
            signatureText: signature.signatureText,
            algorithm: signature.algorithm,
            bodyLength: signature.bodyLength,
            reason: ""
        )
        guard let body = bodyHashes[signature.bodyHashRequest] else {
            verdict.reason = "no body hash was computed"
            return verdict
        }
        if let length = signature.bodyLength, body.canonicalLength < length {
            verdict.result = .fail
            verdict.reason = "l=\(length) is longer than the body (\(body.canonicalLength) octets)"
            return verdict
        }
        guard body.hash == signature.bodyHash else {
            verdict.result = .fail
            verdict.reason = "body hash mismatch (the body was changed)"
            return verdict
        }
        guard let keyName = DNSName("\(signature.selector)._domainkey.\(signature.domain)") else {
            verdict.reason = "no valid key name for s=\(signature.selector) d=\(signature.domain)"
            return verdict
        }
        let lookup = await self.resolver.lookup(keyName, .txt)
        let records: [[UInt8]]
        switch lookup.status {
        case .answer:
            records = lookup.records.compactMap(\.text)
        case .noData, .nxDomain:
            verdict.reason = "no key at \(keyName)"
            return verdict
        case .failure(let failure):
            verdict.result = .temperror
            verdict.reason = "DNS failure looking up \(keyName): \(failure)"
            return verdict
        }
        var key: DKIMKey?
        var refusal = "no key record at \(keyName)"
        for record in records {
            do {
                key = try DKIMKey(record: record, for: signature)
                break
            } catch {
                refusal = error.reason
            }
        }
        guard let key else {
            verdict.reason = refusal
            return verdict
        }
        verdict.testing = key.testing
        if key.verifies(signature.signature, over: Self.headerData(signature, header)) {
            verdict.result = .pass
            verdict.reason = "signature verified with a \(key.description)"
            if let length = signature.bodyLength, length < body.canonicalLength {
                // RFC 6376 §8.2: text after the signed part could have been added by anyone.
                verdict.reason += "; only the first \(length) of \(body.canonicalLength) body octets are signed (l=)"
            }
        } else {
            verdict.result = .fail
            verdict.reason = "the signature does not verify with the \(key.description) (a signed header was changed)"
        }
        return verdict
    }

    /// The header hash input (§3.7, §5.4.2): each h= name takes that field's instances from the
    /// bottom up; a name with no instance left adds nothing; then the signature field without b=.
    static func headerData(_ signature: DKIMSignature, _ header: HeaderSection) -> [UInt8] {
        Self.headerData(
            signedHeaders: signature.signedHeaders,
            canonicalization: signature.headerCanonicalization,
            signatureField: signature.fieldWithoutSignature,
            header: header
        )
    }

    /// The same, from its parts: the signer has no signature to read them from yet.
    static func headerData(
        signedHeaders: [String],
        canonicalization: DKIMSignature.Canonicalization,
        signatureField: [UInt8],
        header: HeaderSection
    ) -> [UInt8] {
        var used: [String: Int] = [:]
        var data: [UInt8] = []
        for name in signedHeaders {
            let instances = header.fields(named: name)
            let taken = used[name, default: 0]
            guard taken < instances.count else { continue }
            used[name] = taken + 1
            data += HeaderCanonicalizer.canonicalize(instances[instances.count - 1 - taken].raw, canonicalization)
        }
        var own = HeaderCanonicalizer.canonicalize(signatureField, canonicalization)
        while let last = own.last, last == 0x0A || last == 0x0D { own.removeLast() }
        data += own
        return data
    }
}
