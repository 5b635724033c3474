import Crypto
import DNSCore
import MailAuth
import MailCore
import PetrelTestSupport
import Testing

/// DKIM pieces on their own: canonicalization (RFC 6376 §3.4.5's example), streaming in any
/// split, l=, and what the scanner does with hostile or odd messages.
struct DKIMTests {
    static func bodyHash(
        _ body: String,
        _ method: DKIMSignature.Canonicalization,
        length: Int? = nil,
        pieceSize: Int? = nil
    ) -> [UInt8] {
        var hasher = BodyHasher(BodyHashRequest(canonicalization: method, length: length))
        let bytes = Array(body.utf8)
        if let pieceSize {
            var offset = 0
            while offset < bytes.count {
                hasher.update(bytes[offset..<min(offset + pieceSize, bytes.count)])
                offset += pieceSize
            }
        } else {
            hasher.update(bytes)
        }
        return hasher.finalize()
    }

    static func sha256(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    @Test(arguments: [
        // RFC 6376 §3.4.5.
        (" C \r\nD \t E\r\n\r\n\r\n", DKIMSignature.Canonicalization.relaxed, " C\r\nD E\r\n"),
        (" C \r\nD \t E\r\n\r\n\r\n", .simple, " C \r\nD \t E\r\n"),
        // Empty bodies (§3.4.3, §3.4.4).
        ("", .simple, "\r\n"),
        ("", .relaxed, ""),
        ("\r\n\r\n", .simple, "\r\n"),
        ("\r\n  \t\r\n", .relaxed, ""),
        // A last line without its CRLF gets one.
        ("end", .simple, "end\r\n"),
        ("end \t", .relaxed, "end\r\n"),
        // Empty lines inside the body stay; only those at the end go.
        ("a\r\n\r\n\r\nb\r\n\r\n", .simple, "a\r\n\r\n\r\nb\r\n"),
        ("a\r\n \r\nb", .relaxed, "a\r\n\r\nb\r\n"),
        // A CR that ends no line is content.
        ("a\rb\r\n", .simple, "a\rb\r\n"),
        ("a\r", .simple, "a\r\r\n"),
    ])
    func bodyCanonicalization(_ body: String, _ method: DKIMSignature.Canonicalization, _ canonical: String) {
        #expect(Self.bodyHash(body, method) == Self.sha256(canonical))
        for size in [1, 2, 3] {
            #expect(Self.bodyHash(body, method, pieceSize: size) == Self.sha256(canonical), "pieces of \(size)")
        }
    }

    @Test func lengthLimitsWhatIsHashed() {
        #expect(Self.bodyHash("hello world\r\n", .simple, length: 5) == Self.sha256("hello"))
        var hasher = BodyHasher(BodyHashRequest(canonicalization: .relaxed, length: 3))
        hasher.update(Array("ab  \r\n\r\n".utf8))
        #expect(hasher.finalize() == Self.sha256("ab\r"))
        #expect(hasher.canonicalLength == 4, "the whole canonical length is known, to refuse l= past the end")
    }

    /// RFC 6376 §3.4.5: "A: X" and "B : Y<TAB>" folded onto "<TAB>Z  ".
    @Test func relaxedHeaderExample() async throws {
        let message = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\nbody\r\n"
        var scanner = MessageScanner(now: 0)
        scanner.append(Array(message.utf8))
        let header = try #require(scanner.finish().header)
        #expect(header.fields.map(\.name) == ["A", "B"])
        #expect(header.fields[1].value == "Y\t\tZ")
    }

    @Test func scannerFindsTheEmptyLineWhereverItFalls() {
        let message = Array("From: a@example.com\r\nSubject: x\r\n\r\nline\r\n".utf8)
        for split in 0...message.count {
            var scanner = MessageScanner(now: 0)
            scanner.append(message[..<split])
            scanner.append(message[split...])
            let scanned = scanner.finish()
            #expect(scanned.header?.fields.count == 2)
            #expect(scanned.bodyOctets == 6, "split at \(split)")
        }
    }

    @Test func oddMessages() {
        // No empty line: all header.
        var headerOnly = MessageScanner(now: 0)
        headerOnly.append(Array("From: a@example.com\r\nSubject: x".utf8))
        let scannedHeaderOnly = headerOnly.finish()
        #expect(scannedHeaderOnly.header?.fields.count == 2 && scannedHeaderOnly.bodyOctets == 0)
        // Starts with the empty line: no header at all.
        var bodyOnly = MessageScanner(now: 0)
        bodyOnly.append(Array("\r\nbody\r\n".utf8))
        #expect(bodyOnly.finish().header?.fields.isEmpty == true)
        // A line that is no header field ends the header section: it and the rest are body.
        // (message, fields, header length, body octets: after the empty line, if there is one)
        for (message, fields, length, body) in [
            ("just a line\r\n\r\nand another\r\n", 0, 0, 28),
            ("From: a@example.com\r\nnot a header\r\n\r\nbody\r\n", 1, 21, 22),
            ("From: a@example.com\r\n: no name\r\n", 1, 21, 11),
            (" starts folded\r\nFrom: a@example.com\r\n\r\n", 0, 0, 39),
            ("Subject : obsolete space\r\n\r\nbody", 1, 26, 4),
        ] {
            var scanner = MessageScanner(now: 0)
            for byte in message.utf8 { scanner.append([byte]) }
            #expect(scanner.headerLength == length, "\(message)")
            let scanned = scanner.finish()
            #expect(scanned.header?.fields.count == fields, "\(message)")
            #expect(scanned.bodyOctets == body, "\(message)")
        }
        // A header section past the limit is dropped, not kept growing.
        var huge = MessageScanner(now: 0, maximumHeaderOctets: 1000)
        for _ in 0..<100 { huge.append(Array("X-Filler: 0123456789012345678901234567890123456789\r\n".utf8)) }
        #expect(huge.headerTooLarge)
        #expect(huge.finish().header == nil)
        // A continuation line before any field, and a line without a colon, are kept but match nothing.
        let odd = HeaderSection(parsing: Array(" leading\r\nno colon here\r\nFrom: a@b.example\r\n".utf8))
        #expect(odd.fields.map(\.name) == ["", "", "From"])
        #expect(odd.fields(named: "from").count == 1)
    }

    @Test func signatureFieldChecks() throws {
        func signature(_ value: String) -> Result<DKIMSignature, DKIMSignature.Invalid> {
            let field = HeaderSection(parsing: Array("DKIM-Signature: \(value)\r\n".utf8)).fields[0]
            return Result { () throws(DKIMSignature.Invalid) in try DKIMSignature(field: field, now: 2_000_000_000) }
        }
        let good = "v=1; a=rsa-sha256; d=example.com; s=sel; h=From:To; bh=AAAA; b=AAAA"
        #expect(throws: Never.self) { try signature(good).get() }
        let parsed = try signature(good + ";").get()
        #expect(parsed.identity == "@example.com" && parsed.signedHeaders == ["from", "to"])
        #expect(parsed.headerCanonicalization == .simple && parsed.bodyCanonicalization == .simple)
        #expect(String(decoding: parsed.fieldWithoutSignature, as: UTF8.self).hasSuffix("b=;\r\n"))
        for (bad, why) in [
            ("v=1; a=rsa-sha256; d=example.com; s=sel; h=To; bh=AAAA; b=AAAA", "From"),
            ("v=1; a=rsa-sha1; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA", "8301"),
            ("v=2; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA", "version"),
            ("v=1; v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA", "twice"),
            ("v=1; a=rsa-sha256; d=example.com; s=sel; h=From; b=AAAA", "bh="),
            ("v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA; i=@other.com", "i="),
            ("v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA; x=1", "expired"),
            ("v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA; l=12a", "number"),
            ("v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=AAAA; b=AAAA; c=fancy", "canonicalization"),
            ("v=1; a=rsa-sha256; d=exa mple.com; s=sel; h=From; bh=AAAA; b=AAAA", "domain"),
            ("v=1 a=rsa-sha256", "no a="),
            ("=1", "malformed"),
        ] {
            guard case .failure(let invalid) = signature(bad) else {
                Issue.record("accepted: \(bad)")
                continue
            }
            #expect(invalid.reason.contains(why), "\(bad): \(invalid.reason)")
        }
    }

    @Test func keyLookupFailuresAreTemporary() async throws {
        let zone = InMemoryZone()
        zone.addTimeout("sel._domainkey.example.com")
        let body = Self.bodyHash("", .simple)
        let message =
            "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=\(Base64.encode(body)); b=AAAA\r\n"
            + "From: a@example.com\r\n\r\n"
        var scanner = MessageScanner(now: 0)
        scanner.append(Array(message.utf8))
        let verdicts = await DKIMVerifier(resolver: zone).verify(scanner.finish())
        #expect(verdicts.map(\.result) == [.temperror])
        #expect(verdicts.first?.domain == "example.com" && verdicts.first?.selector == "sel")
    }
}
