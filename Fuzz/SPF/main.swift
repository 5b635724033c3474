import CFuzzDriver
import MailAuth

// libFuzzer target for the policy records a stranger's DNS hands us: SPF records and their
// macro-strings (RFC 7208 §4.6, §7), and DMARC records (RFC 7489 §6.3). Each either parses into
// consistent values or is refused; a crash, a hang (libFuzzer's -timeout), a leak or an
// AddressSanitizer report is a bug. Built and run by Scripts/fuzz/fuzz.sh spf.

func fuzzSPF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)

    // The record as DNS gave it, and the same text as the body of a record.
    if let record = try? SPFRecord(parsing: bytes) {
        precondition(SPFRecord.isSPF(bytes))
        precondition(record.directives.count < bytes.count, "every directive comes from some text")
    }
    _ = try? SPFRecord(parsing: Array("v=spf1 ".utf8) + bytes)

    // A macro-string prints back as it was written; a domain-spec is a macro-string too.
    if let macro = try? MacroString(parsing: Substring(text)) {
        precondition(macro.description == text)
    }
    if let spec = try? MacroString(domainSpec: Substring(text)) {
        precondition(spec.description == text)
    }

    // DMARC: a record is refused or has values from its grammar.
    for candidate in [bytes, Array("v=DMARC1; ".utf8) + bytes] {
        if let record = DMARCRecord(candidate) {
            precondition(["y", "n", "u"].contains(record.publicSuffix))
            precondition(record.aggregateReportURIs.allSatisfy { $0.contains(":") })
        }
    }
    return 0
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_spf_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzSPF($0, size) } ?? 0 }
}
