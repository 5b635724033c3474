extension DNSMessage {
    /// A message built field by field, for a server to answer with (the test suite's
    /// authoritative server) and for tests that need a response of a given shape.
    public init(
        id: UInt16,
        isResponse: Bool = true,
        opcode: UInt8 = 0,
        authoritative: Bool = false,
        truncated: Bool = false,
        recursionDesired: Bool = false,
        recursionAvailable: Bool = false,
        authenticatedData: Bool = false,
        checkingDisabled: Bool = false,
        responseCode: DNSResponseCode = .noError,
        questions: [DNSQuestion] = [],
        answers: [DNSResourceRecord] = [],
        authorities: [DNSResourceRecord] = [],
        additionals: [DNSResourceRecord] = [],
        ednsPayloadSize: UInt16? = nil,
        dnssecOK: Bool = false
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticatedData = authenticatedData
        self.checkingDisabled = checkingDisabled
        self.responseCode = responseCode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.ednsPayloadSize = ednsPayloadSize
        self.dnssecOK = dnssecOK
    }

    /// The message in RFC 1035 §4.1 wire form, what `init(decoding:)` reads back.
    ///
    /// Names are written uncompressed: compression (§4.1.4) is optional for a sender, and every
    /// reader must take both. With `ednsPayloadSize` set, an OPT record (RFC 6891 §6.1.2) ends the
    /// additional section, carrying the DO bit and the upper eight bits of an extended RCODE
    /// (§6.1.3); without it only the low four bits of the RCODE can be sent. Sizes past the wire
    /// format's limits (more than 65,535 records in a section, RDATA over 65,535 octets, a TXT
    /// string over 255) are programming errors and trap.
    public func encode() -> [UInt8] {
        var writer = DNSWireWriter()
        writer.append16(self.id)
        var flags = UInt16(self.opcode & 0x0F) << 11 | self.responseCode.rawValue & 0x000F
        if self.isResponse { flags |= 0x8000 }
        if self.authoritative { flags |= 0x0400 }
        if self.truncated { flags |= 0x0200 }
        if self.recursionDesired { flags |= 0x0100 }
        if self.recursionAvailable { flags |= 0x0080 }
        if self.authenticatedData { flags |= 0x0020 }
        if self.checkingDisabled { flags |= 0x0010 }
        writer.append16(flags)
        writer.append16(UInt16(self.questions.count))
        writer.append16(UInt16(self.answers.count))
        writer.append16(UInt16(self.authorities.count))
        writer.append16(UInt16(self.additionals.count + (self.ednsPayloadSize == nil ? 0 : 1)))
        for question in self.questions {
            writer.append(question.name)
            writer.append16(question.type.rawValue)
            writer.append16(question.recordClass)
        }
        for record in self.answers + self.authorities + self.additionals {
            writer.append(record)
        }
        if let payloadSize = self.ednsPayloadSize {
            // OPT (RFC 6891 §6.1.2, §6.1.3): root owner, CLASS = payload size, TTL = extended
            // RCODE (8 bits), VERSION 0, DO and Z; no options.
            var ttl = UInt32(self.responseCode.rawValue >> 4 & 0xFF) << 24
            if self.dnssecOK { ttl |= 0x8000 }
            writer.append(
                DNSResourceRecord(name: .root, type: .opt, recordClass: payloadSize, ttl: ttl, data: .opaque([]))
            )
        }
        return writer.bytes
    }
}

extension DNSRecordData {
    /// RDATA in wire form (RFC 1035 §3.3, RFC 3596 §2.2, RFC 2782, RFC 6698 §2.1), names
    /// uncompressed.
    public var wireFormat: [UInt8] {
        var writer = DNSWireWriter()
        writer.append(self)
        return writer.bytes
    }
}

/// Appends big-endian fields (RFC 1035 §2.3.2) and uncompressed names.
private struct DNSWireWriter {
    var bytes: [UInt8] = []

    mutating func append16(_ value: UInt16) {
        self.bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
    }

    mutating func append32(_ value: UInt32) {
        self.append16(UInt16(value >> 16))
        self.append16(UInt16(value & 0xFFFF))
    }

    mutating func append(_ name: DNSName) {
        name.encode(into: &self.bytes)
    }

    mutating func append(_ record: DNSResourceRecord) {
        self.append(record.name)
        self.append16(record.type.rawValue)
        self.append16(record.recordClass)
        self.append32(record.ttl)
        // RDLENGTH is known once the data is written: reserve it, then fill it in.
        let lengthOffset = self.bytes.count
        self.append16(0)
        self.append(record.data)
        let length = UInt16(self.bytes.count - lengthOffset - 2)
        self.bytes[lengthOffset] = UInt8(length >> 8)
        self.bytes[lengthOffset + 1] = UInt8(length & 0xFF)
    }

    mutating func append(_ data: DNSRecordData) {
        switch data {
        case .a(let octets), .aaaa(let octets), .opaque(let octets):
            self.bytes += octets
        case .mx(let preference, let exchange):
            self.append16(preference)
            self.append(exchange)
        case .srv(let priority, let weight, let port, let target):
            self.append16(priority)
            self.append16(weight)
            self.append16(port)
            self.append(target)
        case .txt(let strings):
            // Character-strings (RFC 1035 §3.3): a length octet, then at most 255 octets.
            for string in strings {
                self.bytes.append(UInt8(string.count))
                self.bytes += string
            }
        case .name(let name):
            self.append(name)
        case .soa(let soa):
            self.append(soa.primary)
            self.append(soa.responsible)
            self.append32(soa.serial)
            self.append32(soa.refresh)
            self.append32(soa.retry)
            self.append32(soa.expire)
            self.append32(soa.minimum)
        case .tlsa(let usage, let selector, let matchingType, let data):
            self.bytes += [usage, selector, matchingType]
            self.bytes += data
        }
    }
}
