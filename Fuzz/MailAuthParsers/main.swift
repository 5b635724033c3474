// libFuzzer target for the parsers mail authentication feeds with bytes from strangers: SPF
// records and macro-strings (from DNS), DMARC records (from DNS), header sections, DKIM-Signature
// fields and From address lists (from the message), IDNA. Each input is given to all of them; a
// crash, a hang (libFuzzer's -timeout), a leak or an AddressSanitizer report is a bug. Built and
// run by Scripts/fuzz.sh mailauth.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMailAuthParsers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)

    // SPF: the record as DNS gave it, and the same text as a record body.
    if let record = try? SPFRecord(parsing: bytes) {
        precondition(record.directives.count < bytes.count, "every directive comes from some text")
    }
    _ = try? SPFRecord(parsing: Array("v=spf1 ".utf8) + bytes)
    if let macro = try? MacroString(parsing: Substring(text)) {
        precondition(macro.description == text)
    }
    _ = try? MacroString(domainSpec: Substring(text))

    // DMARC: a record is either rejected or has consistent values.
    if let record = DMARCRecord(bytes) {
        precondition(["y", "n", "u"].contains(record.publicSuffix))
    }

    // The message side: header fields, the signatures among them, From.
    let header = HeaderSection(parsing: bytes)
    precondition(header.bytes == bytes, "header parsing keeps every octet")
    for field in header.fields {
        _ = field.value
        if let signature = try? DKIMSignature(field: field, now: 1_800_000_000) {
            precondition(!signature.signedHeaders.isEmpty && signature.signedHeaders.contains("from"))
            precondition(signature.fieldWithoutSignature.count < field.raw.count)
        }
        if let addresses = AddressList.addresses(in: field.value) {
            for address in addresses {
                precondition(address.contains("@"))
                if let domain = AddressList.domain(of: address) {
                    precondition(domain.unicodeScalars.allSatisfy(\.isASCII), "an A-label form")
                }
            }
        }
    }
    _ = IDNA.toASCII(text)
    _ = IPAddress(text)
    return 0
}
