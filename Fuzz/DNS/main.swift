import CFuzzDriver
import DNSCore

// libFuzzer target for DNSCore's decoder: every packet either decodes into a message whose
// names respect RFC 1035's limits, or throws DNSDecodingError. A crash, a hang (libFuzzer's
// -timeout), a leak or an AddressSanitizer report is a bug. Built and run by Scripts/fuzz/fuzz.sh dns.

func fuzzDNSDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let packet = Array(UnsafeBufferPointer(start: data, count: size))
    guard let message = try? DNSMessage(decoding: packet) else { return 0 }
    let records = message.answers + message.authorities + message.additionals
    for name in message.questions.map(\.name) + records.map(\.name) {
        check(name)
    }
    for record in records {
        _ = record.presentation
        switch record.data {
        case .a(let octets): precondition(octets.count == 4)
        case .aaaa(let octets): precondition(octets.count == 16)
        case .name(let target), .mx(_, let target), .srv(_, _, _, let target): check(target)
        case .soa(let soa):
            check(soa.primary)
            check(soa.responsible)
        case .txt(let strings): precondition(strings.allSatisfy { $0.count <= 255 })
        case .tlsa, .opaque: break
        }
    }
    // Interpreting the answer as the resolver does (CNAME chains, negative TTLs) must not trap.
    if let question = message.questions.first {
        _ = DNSLookupResult(interpreting: message, for: question)
    }
    // Names printed in presentation format read back as the same name.
    if let name = message.questions.first?.name {
        precondition(DNSName(name.description) == name, "\(name) does not read back")
    }
    return 0
}

func check(_ name: DNSName) {
    precondition(name.labels.allSatisfy { !$0.isEmpty && $0.count <= DNSName.maximumLabelLength })
    precondition(name.labels.reduce(1) { $0 + 1 + $1.count } <= DNSName.maximumWireLength)
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_dns_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzDNSDecoder($0, size) } ?? 0 }
}
