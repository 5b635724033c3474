import CFuzzDriver
import MailCore

@testable import MailAuth

// libFuzzer target for DKIM's parsers (RFC 6376): the DKIM-Signature field a message carries,
// the key record its signer's DNS publishes (with the RSA or Ed25519 key decoded from p=), and
// the canonicalization of header fields and body. A body hashed in two pieces hashes as in one.
// A crash, a hang (libFuzzer's -timeout), a leak or an AddressSanitizer report is a bug. Built
// with -enable-testing for the internal key-record type; run by Scripts/fuzz/fuzz.sh dkim.
//
// Input: one octet of switches, then the octets.

let knownSignature = try! DKIMSignature(
    field: HeaderField(
        name: "DKIM-Signature",
        raw: Array("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA\r\n".utf8)
    ),
    now: 1_800_000_000
)
let knownEd25519Signature = try! DKIMSignature(
    field: HeaderField(
        name: "DKIM-Signature",
        raw: Array(
            "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=sel; i=@a.example.com; h=from; bh=AAAA; b=AAAA\r\n"
                .utf8
        )
    ),
    now: 1_800_000_000
)

func fuzzDKIM(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let switches = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))

    // The signature field, as found in a message (with and without its name).
    for raw in [bytes, Array("DKIM-Signature:".utf8) + bytes] {
        let field = HeaderField(name: "DKIM-Signature", raw: raw)
        if let signature = try? DKIMSignature(field: field, now: 1_800_000_000) {
            precondition(signature.signedHeaders.contains("from"), "h= must sign From")
            precondition(DKIMSignature.isDomainName(signature.domain))
            precondition(signature.fieldWithoutSignature.count < field.raw.count)
            _ = HeaderCanonicalizer.canonicalize(field.raw, signature.headerCanonicalization)
        }
    }

    // The key record, for an RSA and an Ed25519 signature.
    _ = try? DKIMKey(record: bytes, for: knownSignature)
    _ = try? DKIMKey(record: bytes, for: knownEd25519Signature)
    if let tags = try? TagList(parsing: bytes) {
        precondition(Set(tags.tags.map(\.name)).count == tags.tags.count, "a tag appears twice")
    }

    // Canonicalization: a field (a name without line breaks, a colon, a value) comes out of
    // relaxed canonicalization with no CR or LF but its final CRLF; a body hashed whole or in two
    // pieces gives one hash.
    if let colon = bytes.firstIndex(of: 0x3A), !bytes[..<colon].contains(0x0A), !bytes[..<colon].contains(0x0D) {
        let header = HeaderCanonicalizer.canonicalize(bytes, .relaxed)
        precondition(!header.dropLast(2).contains(0x0A) && !header.dropLast(2).contains(0x0D))
    }
    let canonicalization: DKIMSignature.Canonicalization = switches & 1 == 0 ? .simple : .relaxed
    let length: Int? = switches & 2 == 0 ? nil : Int(switches >> 2) * 3
    var whole = BodyHasher(BodyHashRequest(canonicalization: canonicalization, length: length))
    whole.update(bytes)
    let split = Int(switches) % (bytes.count + 1)
    var pieces = BodyHasher(BodyHashRequest(canonicalization: canonicalization, length: length))
    pieces.update(bytes[..<split])
    pieces.update(bytes[split...])
    precondition(whole.finalize() == pieces.finalize(), "the body hash depends on how the body was read")
    return 0
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_dkim_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzDKIM($0, size) } ?? 0 }
}
