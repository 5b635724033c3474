import CFuzzDriver
import MailAuth
import MailCore

// libFuzzer target for the header parsers a received message goes through: HeaderSection (the
// header fields as one block), MessageScanner (the streaming reader that finds the header section,
// the DKIM-Signature fields and the body hashes as content arrives, and where the body starts),
// address lists (From read strictly, recipients leniently), the author-field rules, display names,
// IDNA, and the authserv-id of Authentication-Results fields. A message read in two pieces is read
// as in one. A crash, a hang (libFuzzer's -timeout), a leak or an AddressSanitizer report is a bug.
// Built and run by Scripts/fuzz/fuzz.sh headers.
//
// Input: one octet saying where to cut the message in two, then the message.

func fuzzHeaders(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let text = String(decoding: bytes, as: UTF8.self)

    let header = HeaderSection(parsing: bytes)
    precondition(header.bytes == bytes, "header parsing keeps every octet")
    for field in header.fields {
        _ = field.value
        for addresses in [AddressList.mailboxes(in: field.value), AddressList.recipients(in: field.value)] {
            for address in addresses ?? [] {
                precondition(address.contains("@"))
                if let domain = AddressList.domain(of: address) {
                    precondition(domain.unicodeScalars.allSatisfy { $0.isASCII }, "an A-label form")
                }
            }
        }
        if let strict = AuthorFields.addresses(in: field.value) {
            precondition(!strict.isEmpty && strict.allSatisfy { AddressList.domain(of: $0) != nil })
        }
        _ = AuthenticationResults.authservID(of: field)
    }
    _ = AuthorFields.problem(header: header, malformedLine: nil)
    _ = AuthorFields.submission(header: header, malformedLine: nil)
    _ = IDNA.toASCII(text)
    _ = IPAddress(text)
    if let phrase = try? DisplayName.encode(text) {
        // A display name never ends the field it is in: its only line ends fold (CR LF space).
        let octets = Array(phrase.utf8)
        for index in octets.indices where octets[index] == 0x0D || octets[index] == 0x0A {
            let start = octets[index] == 0x0D ? index : index - 1
            precondition(
                start >= 0 && start + 2 < octets.count && octets[start...(start + 2)] == [0x0D, 0x0A, 0x20],
                "a line end that is no folding in a display name"
            )
        }
    }

    // The streaming scanner, whole and in two reads (small limits, so they are reached).
    let cut = Int(data[0]) * bytes.count / 255
    var whole = MessageScanner(now: 1_800_000_000, maximumHeaderOctets: 2_048, maximumSignatures: 3)
    whole.append(bytes)
    var pieces = MessageScanner(now: 1_800_000_000, maximumHeaderOctets: 2_048, maximumSignatures: 3)
    // What a caller that streams the message to disk writes (MessageBeingReceived): the header it was
    // given, then what follows it as the scanner says, then the rest: the message again.
    var written: [UInt8] = []
    var headerDone = false
    for part in [bytes[..<cut], bytes[cut...]] {
        if headerDone {
            written += part
            pieces.append(part)
        } else if let end = pieces.append(part) {
            headerDone = true
            written += (pieces.header?.bytes ?? []) + end.carried + part.dropFirst(end.offset)
        }
    }
    precondition(whole.headerTooLarge == pieces.headerTooLarge)
    let one = whole.finish()
    let two = pieces.finish()
    precondition(!headerDone || written == bytes, "the header end loses or repeats octets")
    precondition(one.header == two.header, "the header section depends on how the message was read")
    precondition(one.malformedLine == two.malformedLine)
    precondition(one.bodyOctets == two.bodyOctets)
    precondition(one.signatures.count == two.signatures.count && one.signatures.count <= 3)
    precondition(one.bodyHashes.keys == two.bodyHashes.keys)
    for (request, hash) in one.bodyHashes { precondition(two.bodyHashes[request]! == hash) }
    return 0
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_headers_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzHeaders($0, size) } ?? 0 }
}
