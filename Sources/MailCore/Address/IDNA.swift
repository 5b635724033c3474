/// Domain names with non-ASCII labels in their ASCII form (RFC 5890 A-labels, Punycode of
/// RFC 3492), as DNS queries and DMARC need them. Labels are lower-cased first; the full IDNA2008
/// mapping and validity tables are not applied.
public enum IDNA {
    /// `bücher.example` → `xn--bcher-kva.example`; ASCII names come back lower-cased. Nil when a
    /// label cannot be encoded (empty, or too long once encoded).
    public static func toASCII(_ domain: String) -> String? {
        var labels: [String] = []
        for label in domain.split(separator: ".", omittingEmptySubsequences: false) {
            let lowered = label.lowercased()
            if lowered.unicodeScalars.allSatisfy(\.isASCII) {
                labels.append(lowered)
            } else {
                guard let encoded = Self.punycode(Array(lowered.unicodeScalars)) else { return nil }
                labels.append("xn--" + encoded)
            }
            guard labels.last!.utf8.count <= 63 else { return nil }
        }
        return labels.joined(separator: ".")
    }

    // RFC 3492 §5 parameters.
    private static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700, initialBias = 72, initialN = 128

    /// RFC 3492 §6.3 encoding.
    static func punycode(_ input: [Unicode.Scalar]) -> String? {
        let codePoints = input.map { Int($0.value) }
        var output: [UInt8] = codePoints.filter { $0 < 0x80 }.map { UInt8($0) }
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append(0x2D) }
        var n = Self.initialN
        var delta = 0
        var bias = Self.initialBias
        while handled < codePoints.count {
            guard let next = codePoints.filter({ $0 >= n }).min() else { return nil }
            let (product, overflow) = (next - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow else { return nil }
            delta += product
            n = next
            for code in codePoints {
                if code < n { delta += 1 }
                if code == n {
                    var q = delta
                    var k = Self.base
                    while true {
                        let t = k <= bias ? Self.tMin : (k >= bias + Self.tMax ? Self.tMax : k - bias)
                        if q < t { break }
                        output.append(Self.digit(t + (q - t) % (Self.base - t)))
                        q = (q - t) / (Self.base - t)
                        k += Self.base
                    }
                    output.append(Self.digit(q))
                    bias = Self.adapt(delta, handled + 1, first: handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func digit(_ value: Int) -> UInt8 {
        value < 26 ? UInt8(value) + 0x61 : UInt8(value - 26) + 0x30
    }

    private static func adapt(_ delta: Int, _ count: Int, first: Bool) -> Int {
        var delta = first ? delta / Self.damp : delta / 2
        delta += delta / count
        var k = 0
        while delta > ((Self.base - Self.tMin) * Self.tMax) / 2 {
            delta /= Self.base - Self.tMin
            k += Self.base
        }
        return k + (Self.base - Self.tMin + 1) * delta / (delta + Self.skew)
    }
}
