/// Why a packet is not a DNS message we can read. Every hostile shape ends here, never in a crash.
public enum DNSDecodingError: Error, Hashable, Sendable {
    /// The packet ends before what it announces (a header, a count, a length).
    case truncated
    /// A compression pointer that does not point strictly backwards, so it could loop.
    case badPointer
    /// Label types 0b01 and 0b10 (RFC 6891 §5 retired them).
    case badLabelType
    case nameTooLong
    /// RDATA that does not fit its RDLENGTH or its type.
    case badRecordData(DNSRecordType)
    /// Octets left over after the last record.
    case trailingData
}

public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSRecordType
    /// 1 is IN.
    public var recordClass: UInt16

    public init(name: DNSName, type: DNSRecordType, recordClass: UInt16 = 1) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

public struct DNSSOA: Hashable, Sendable {
    public var primary: DNSName
    public var responsible: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    /// The negative-caching TTL (RFC 2308 §4).
    public var minimum: UInt32

    public init(
        primary: DNSName,
        responsible: DNSName,
        serial: UInt32,
        refresh: UInt32,
        retry: UInt32,
        expire: UInt32,
        minimum: UInt32
    ) {
        self.primary = primary
        self.responsible = responsible
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// RDATA, decoded for the types Petrel reads and kept as octets for the others.
public enum DNSRecordData: Hashable, Sendable {
    case a([UInt8])
    case aaaa([UInt8])
    case mx(preference: UInt16, exchange: DNSName)
    /// RFC 2782.
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    /// The character-strings of one TXT record (RFC 1035 §3.3.14).
    case txt([[UInt8]])
    /// CNAME, PTR, NS.
    case name(DNSName)
    case soa(DNSSOA)
    /// RFC 6698 §2.1.
    case tlsa(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8])
    case opaque([UInt8])
}

public struct DNSResourceRecord: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSRecordType
    public var recordClass: UInt16
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: DNSName, type: DNSRecordType, recordClass: UInt16 = 1, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }

    /// A TXT record's strings joined with nothing between them, as SPF (RFC 7208 §3.3) and DKIM
    /// (RFC 6376 §3.6.2.2) read them.
    public var text: [UInt8]? {
        guard case .txt(let strings) = self.data else { return nil }
        return strings.flatMap { $0 }
    }
}

/// A DNS message (RFC 1035 §4.1) with EDNS (RFC 6891), decoded strictly.
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    public var isResponse: Bool
    public var opcode: UInt8
    public var authoritative: Bool
    public var truncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    /// AD: the (validating) resolver checked the answer's DNSSEC signatures (RFC 4035 §3.2.3).
    public var authenticatedData: Bool
    public var checkingDisabled: Bool
    /// With the extended bits from the OPT record.
    public var responseCode: DNSResponseCode
    public var questions: [DNSQuestion]
    public var answers: [DNSResourceRecord]
    public var authorities: [DNSResourceRecord]
    /// Without the OPT record, which is decoded into the EDNS fields.
    public var additionals: [DNSResourceRecord]
    /// The sender's UDP payload size, when it used EDNS.
    public var ednsPayloadSize: UInt16?
    public var dnssecOK: Bool

    public init(decoding packet: [UInt8]) throws(DNSDecodingError) {
        var reader = DNSWireReader(packet)
        self.id = try reader.readUInt16()
        let flags = try reader.readUInt16()
        self.isResponse = flags & 0x8000 != 0
        self.opcode = UInt8((flags >> 11) & 0x0F)
        self.authoritative = flags & 0x0400 != 0
        self.truncated = flags & 0x0200 != 0
        self.recursionDesired = flags & 0x0100 != 0
        self.recursionAvailable = flags & 0x0080 != 0
        self.authenticatedData = flags & 0x0020 != 0
        self.checkingDisabled = flags & 0x0010 != 0
        var rcode = flags & 0x000F
        let questionCount = try reader.readUInt16()
        let answerCount = try reader.readUInt16()
        let authorityCount = try reader.readUInt16()
        let additionalCount = try reader.readUInt16()

        self.questions = []
        for _ in 0..<questionCount {
            let name = try reader.readName()
            let type = DNSRecordType(rawValue: try reader.readUInt16())
            let recordClass = try reader.readUInt16()
            self.questions.append(DNSQuestion(name: name, type: type, recordClass: recordClass))
        }
        self.answers = try (0..<answerCount).map { _ throws(DNSDecodingError) in try reader.readRecord() }
        self.authorities = try (0..<authorityCount).map { _ throws(DNSDecodingError) in try reader.readRecord() }
        self.additionals = []
        self.ednsPayloadSize = nil
        self.dnssecOK = false
        for _ in 0..<additionalCount {
            let record = try reader.readRecord()
            if record.type == .opt {
                // One OPT record at most (RFC 6891 §6.1.1).
                guard self.ednsPayloadSize == nil else { throw .badRecordData(.opt) }
                // OPT (RFC 6891 §6.1.3): CLASS is the payload size, TTL carries the extended
                // RCODE, the version and the DO bit.
                self.ednsPayloadSize = record.recordClass
                rcode |= UInt16(record.ttl >> 24) << 4
                self.dnssecOK = record.ttl & 0x8000 != 0
            } else {
                self.additionals.append(record)
            }
        }
        guard reader.atEnd else { throw .trailingData }
        self.responseCode = DNSResponseCode(rawValue: rcode)
    }
}

/// A query as a stub resolver sends it: one question, recursion desired, EDNS with DO so that a
/// validating resolver reports its AD bit (RFC 6840 §5.7).
public struct DNSQuery: Hashable, Sendable {
    public var id: UInt16
    public var question: DNSQuestion
    /// 1232 octets: what the DNS flag day 2020 settled on to avoid IP fragmentation.
    public var ednsPayloadSize: UInt16
    public var dnssecOK: Bool

    public init(id: UInt16, name: DNSName, type: DNSRecordType, ednsPayloadSize: UInt16 = 1232, dnssecOK: Bool = true) {
        self.id = id
        self.question = DNSQuestion(name: name, type: type)
        self.ednsPayloadSize = ednsPayloadSize
        self.dnssecOK = dnssecOK
    }

    public func encode() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        func append16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        append16(self.id)
        append16(0x0100)  // RD
        append16(1)  // QDCOUNT
        append16(0)
        append16(0)
        append16(1)  // ARCOUNT: OPT
        self.question.name.encode(into: &bytes)
        append16(self.question.type.rawValue)
        append16(self.question.recordClass)
        // OPT pseudo-record: root name, TYPE 41, CLASS = payload size, TTL = ext-rcode/version/DO.
        bytes.append(0)
        append16(DNSRecordType.opt.rawValue)
        append16(self.ednsPayloadSize)
        append16(0)
        append16(self.dnssecOK ? 0x8000 : 0)
        append16(0)  // RDLENGTH
        return bytes
    }

    /// Whether a response answers this query: same id, a response, the same question
    /// (RFC 5452 §4.1: what a stub checks against spoofed answers).
    public func isAnswered(by response: DNSMessage) -> Bool {
        response.id == self.id && response.isResponse && response.questions.count == 1
            && response.questions[0].name == self.question.name && response.questions[0].type == self.question.type
            && response.questions[0].recordClass == self.question.recordClass
    }
}

/// Reads a packet with bounds checks everywhere.
struct DNSWireReader {
    let packet: [UInt8]
    var offset = 0

    init(_ packet: [UInt8]) {
        self.packet = packet
    }

    var atEnd: Bool { self.offset == self.packet.count }

    mutating func readUInt8() throws(DNSDecodingError) -> UInt8 {
        guard self.offset < self.packet.count else { throw .truncated }
        defer { self.offset += 1 }
        return self.packet[self.offset]
    }

    mutating func readUInt16() throws(DNSDecodingError) -> UInt16 {
        UInt16(try self.readUInt8()) << 8 | UInt16(try self.readUInt8())
    }

    mutating func readUInt32() throws(DNSDecodingError) -> UInt32 {
        UInt32(try self.readUInt16()) << 16 | UInt32(try self.readUInt16())
    }

    mutating func readBytes(_ count: Int) throws(DNSDecodingError) -> [UInt8] {
        guard count >= 0, self.packet.count - self.offset >= count else { throw .truncated }
        defer { self.offset += count }
        return Array(self.packet[self.offset..<(self.offset + count)])
    }

    /// A possibly compressed name (RFC 1035 §4.1.4). Every pointer must point before the place it
    /// was read from, so following pointers always ends. A name has at most 127 labels, so a
    /// real compressor needs no more than that many pointers; more is a chain of pointers to
    /// pointers, made to burn CPU on every record that refers to it.
    mutating func readName() throws(DNSDecodingError) -> DNSName {
        var labels: [[UInt8]] = []
        var wireLength = 1
        var position = self.offset
        var limit = self.offset  // pointers must go below this
        var jumped = false
        var pointers = 0
        while true {
            guard position < self.packet.count else { throw .truncated }
            let length = self.packet[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    if !jumped { self.offset = position + 1 }
                    return DNSName(uncheckedLabels: labels)
                }
                let start = position + 1
                guard self.packet.count - start >= Int(length) else { throw .truncated }
                wireLength += Int(length) + 1
                guard wireLength <= DNSName.maximumWireLength else { throw .nameTooLong }
                labels.append(Array(self.packet[start..<(start + Int(length))]))
                position = start + Int(length)
            case 0xC0:
                guard position + 1 < self.packet.count else { throw .truncated }
                let target = Int(length & 0x3F) << 8 | Int(self.packet[position + 1])
                guard target < limit else { throw .badPointer }
                pointers += 1
                guard pointers <= 127 else { throw .badPointer }
                if !jumped {
                    self.offset = position + 2
                    jumped = true
                }
                limit = target
                position = target
            default:
                throw .badLabelType
            }
        }
    }

    mutating func readRecord() throws(DNSDecodingError) -> DNSResourceRecord {
        let name = try self.readName()
        let type = DNSRecordType(rawValue: try self.readUInt16())
        let recordClass = try self.readUInt16()
        let ttl = try self.readUInt32()
        let length = Int(try self.readUInt16())
        guard self.packet.count - self.offset >= length else { throw .truncated }
        let end = self.offset + length
        let data = try self.readRecordData(type: type, end: end)
        guard self.offset == end else { throw .badRecordData(type) }
        return DNSResourceRecord(name: name, type: type, recordClass: recordClass, ttl: ttl, data: data)
    }

    private mutating func readRecordData(type: DNSRecordType, end: Int) throws(DNSDecodingError) -> DNSRecordData {
        let length = end - self.offset
        // A name in RDATA may point anywhere earlier in the message, but must end inside RDATA.
        func name(_ reader: inout DNSWireReader) throws(DNSDecodingError) -> DNSName {
            let name = try reader.readName()
            guard reader.offset <= end else { throw .badRecordData(type) }
            return name
        }
        switch type {
        case .a:
            guard length == 4 else { throw .badRecordData(type) }
            return .a(try self.readBytes(4))
        case .aaaa:
            guard length == 16 else { throw .badRecordData(type) }
            return .aaaa(try self.readBytes(16))
        case .mx:
            guard length >= 3 else { throw .badRecordData(type) }
            let preference = try self.readUInt16()
            return .mx(preference: preference, exchange: try name(&self))
        case .srv:
            guard length >= 7 else { throw .badRecordData(type) }
            let priority = try self.readUInt16()
            let weight = try self.readUInt16()
            let port = try self.readUInt16()
            return .srv(priority: priority, weight: weight, port: port, target: try name(&self))
        case .cname, .ptr, .ns:
            return .name(try name(&self))
        case .txt:
            var strings: [[UInt8]] = []
            while self.offset < end {
                let count = Int(try self.readUInt8())
                guard end - self.offset >= count else { throw .badRecordData(type) }
                strings.append(try self.readBytes(count))
            }
            guard !strings.isEmpty else { throw .badRecordData(type) }
            return .txt(strings)
        case .soa:
            let primary = try name(&self)
            let responsible = try name(&self)
            guard end - self.offset == 20 else { throw .badRecordData(type) }
            return .soa(
                DNSSOA(
                    primary: primary,
                    responsible: responsible,
                    serial: try self.readUInt32(),
                    refresh: try self.readUInt32(),
                    retry: try self.readUInt32(),
                    expire: try self.readUInt32(),
                    minimum: try self.readUInt32()
                )
            )
        case .tlsa:
            guard length >= 3 else { throw .badRecordData(type) }
            return .tlsa(
                usage: try self.readUInt8(),
                selector: try self.readUInt8(),
                matchingType: try self.readUInt8(),
                data: try self.readBytes(length - 3)
            )
        default:
            return .opaque(try self.readBytes(length))
        }
    }
}
