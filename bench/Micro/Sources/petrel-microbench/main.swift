// Micro-benchmarks of the code every message goes through: the command parser, the DATA reader
// (framer), DKIM body canonicalisation + SHA-256 and a whole signature, and the DNS codec. Each
// prints the median time per operation over several rounds and the allocations per operation
// (malloc calls, counted by ordo-one's malloc-interposer, which bench/micro preloads).
//
//   bench/micro            (builds release and runs this with the interposer preloaded)

import DNSCore
import Foundation
import MailAuth
import MailCore
import MallocInterposerSwift
import NIOCore
import SMTPCore

struct Result {
    var name: String
    var unit: String
    var nanosecondsPerOperation: Double
    var allocationsPerOperation: Double
    var megabytesPerSecond: Double?
}

/// Runs `body` (which does `operations` operations) for `rounds` rounds after a warm-up round;
/// the median round gives the time, one more counted round the allocations.
func measure(
    _ name: String,
    unit: String = "op",
    operations: Int,
    bytes: Int? = nil,
    rounds: Int = 7,
    _ body: () -> Void
) -> Result {
    body()
    var times: [Double] = []
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        body()
        let elapsed = ContinuousClock.now - start
        times.append(Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9)
    }
    times.sort()
    let median = times[times.count / 2]
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    body()
    MallocInterposerSwift.unhook()
    let allocations = MallocInterposerSwift.getStatistics().mallocCount
    return Result(
        name: name,
        unit: unit,
        nanosecondsPerOperation: median / Double(operations),
        allocationsPerOperation: Double(allocations) / Double(operations),
        megabytesPerSecond: bytes.map { Double($0) / (median / 1e9) / 1_000_000 }
    )
}

@inline(never) func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

MallocInterposerSwift.initialize()
var results: [Result] = []

// The command parser: the commands of one message's dialogue.
let commands = [
    "EHLO client.example.org", "MAIL FROM:<sender@example.org> SIZE=4096 BODY=8BITMIME",
    "RCPT TO:<alice@example.com>", "DATA", "QUIT",
].map { Array($0.utf8) }
results.append(
    measure("command parser (EHLO, MAIL, RCPT, DATA, QUIT)", unit: "command", operations: 100_000 * commands.count) {
        for _ in 0..<100_000 {
            for line in commands { consume(SMTPCommandParser.parse(line)) }
        }
    }
)

// The DATA reader: a 4 KiB and a 1 MiB message (78-octet lines, some dot-stuffed) arriving in
// 4 KiB reads, through the framer that turns them into content events.
func messageBytes(_ size: Int) -> [UInt8] {
    var text = "From: <a@example.org>\r\nSubject: bench\r\n\r\n"
    var line = 0
    while text.utf8.count < size {
        text += (line % 20 == 0 ? ".." : "") + String(repeating: "x", count: 76) + "\r\n"
        line += 1
    }
    return Array((text + ".\r\n").utf8)
}
for size in [4096, 1 << 20] {
    let data = messageBytes(size)
    let chunks = stride(from: 0, to: data.count, by: 4096).map {
        ByteBuffer(bytes: data[$0..<min($0 + 4096, data.count)])
    }
    let repeats = size == 4096 ? 20_000 : 40
    results.append(
        measure(
            "DATA reader, \(size == 4096 ? "4 KiB" : "1 MiB") message in 4 KiB reads",
            unit: "message",
            operations: repeats,
            bytes: repeats * data.count
        ) {
            for _ in 0..<repeats {
                var framer = SMTPInboundFramer(limits: SMTPLimits(messageSize: 50 << 20, recipients: 100))
                framer.append(ByteBuffer(string: "DATA\r\n"))
                consume(framer.next())
                framer.replySent(then: .messageData)
                for chunk in chunks {
                    framer.append(chunk)
                    while let event = framer.next() { consume(event) }
                }
            }
        }
    )
}

// DKIM: relaxed body canonicalisation + SHA-256 of a 64 KiB body, and a whole Ed25519 signature
// of a 4 KiB message (header canonicalisation, body hash, signing).
let body = Array(messageBytes(65_536).dropFirst(39))
results.append(
    measure("DKIM body hash (relaxed, SHA-256), 64 KiB", unit: "body", operations: 200, bytes: 200 * body.count) {
        for _ in 0..<200 {
            var hasher = BodyHasher(BodyHashRequest(canonicalization: .relaxed))
            hasher.update(body)
            consume(hasher.finalize())
        }
    }
)
let small = messageBytes(4096)
let signer = DKIMSigner(domain: "example.org", selector: "bench", key: try DKIMPrivateKey.generate(.ed25519))
let header = HeaderSection(parsing: Array(small[..<(small.firstRange(of: Array("\r\n\r\n".utf8))!.upperBound)]))
results.append(
    measure("DKIM Ed25519 signature of a 4 KiB message", unit: "message", operations: 2_000) {
        for _ in 0..<2_000 {
            var hasher = BodyHasher(BodyHashRequest(canonicalization: .relaxed))
            hasher.update(small)
            consume(try? signer.signatureField(header: header, bodyHash: hasher.finalize(), timestamp: 1_800_000_000))
        }
    }
)

// The DNS codec: a query encoded, and an MX answer and a TXT (SPF) answer decoded.
let query = DNSQuery(id: 4242, name: DNSName("example.org")!, type: .mx)
results.append(
    measure("DNS query encode", unit: "query", operations: 200_000) {
        for _ in 0..<200_000 { consume(query.encode()) }
    }
)
func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}
// example.org MX 10 mx1.example.org, MX 20 mx2.example.org; then a TXT answer with an SPF record.
let mxAnswer = hex(
    "109281800001000200000000076578616d706c65036f726700000f0001c00c000f00010000012c0008000a036d7831c00cc00c000f00010000012c00080014036d7832c00c"
)
let spf = Array("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.net -all".utf8)
let txtAnswer =
    hex("109281800001000100000000076578616d706c65036f72670000100001c00c001000010000012c")
    + [0x00, UInt8(spf.count + 1), UInt8(spf.count)] + spf
for (name, packet) in [("DNS MX answer decode", mxAnswer), ("DNS TXT (SPF) answer decode", txtAnswer)] {
    guard (try? DNSMessage(decoding: packet)) != nil else { fatalError("\(name): the test packet does not decode") }
    results.append(
        measure(name, unit: "answer", operations: 200_000) {
            for _ in 0..<200_000 { consume(try? DNSMessage(decoding: packet)) }
        }
    )
}

print("| benchmark | time per \("unit") | allocations per unit | throughput |")
print("|---|---|---|---|")
for result in results {
    let time =
        result.nanosecondsPerOperation >= 10_000
        ? String(format: "%.1f µs / %@", result.nanosecondsPerOperation / 1000, result.unit)
        : String(format: "%.0f ns / %@", result.nanosecondsPerOperation, result.unit)
    let throughput = result.megabytesPerSecond.map { String(format: "%.0f MB/s", $0) } ?? "-"
    print("| \(result.name) | \(time) | \(String(format: "%.1f", result.allocationsPerOperation)) | \(throughput) |")
}
