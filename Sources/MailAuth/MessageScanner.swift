import MailCore

/// Splits a message as it streams by into the header section (kept, up to a limit) and the body
/// (never kept: each DKIM signature's body hash is computed on the fly).
///
/// The header section ends at the empty line, or, as in Postfix's cleanup, at the first line
/// that is neither a header field nor the continuation of one: such a line and all that follows
/// is body, and the header section is `malformed` (a mail reader may well show that line and the
/// fields after it as header, so a receiver that judges a message by its header refuses it).
///
/// The scanner is the one place the header section is kept while it arrives; a caller that
/// streams the message elsewhere learns from `append` where the body starts.
public struct MessageScanner: Sendable {
    public struct Scanned: Sendable {
        /// Nil when the header section was larger than the limit.
        public var header: HeaderSection?
        /// The header section ended at a line that is no header field (1 is the message's first
        /// line); nil when it ended at the empty line or with the message.
        public var malformedLine: Int?
        public var signatures: [Result<DKIMSignature, DKIMSignature.Invalid>]
        public var bodyHashes: [BodyHashRequest: (hash: [UInt8], canonicalLength: Int)]
        public var bodyOctets: Int
    }

    enum Position {
        /// At the start of a line of the header section.
        case lineStart
        /// A CR at the start of a line: the empty line, if LF follows.
        case lineStartCR
        /// Reading a field name, then (after white space) expecting its colon.
        case name, nameSpace
        /// In a field's value, or in a continuation line.
        case value
        case body, overflow
    }

    public let maximumHeaderOctets: Int
    /// Signatures beyond this many are not verified (each costs a DNS query and a public-key
    /// operation).
    public let maximumSignatures: Int
    /// Whether to read DKIM signatures and hash the body for them (not for mail that is not
    /// verified, such as a logged-in user's).
    public let dkim: Bool
    let now: Int
    private var position = Position.lineStart
    private var headerOctets: [UInt8] = []
    /// Where the current line starts in `headerOctets`.
    private var lineStart = 0
    public private(set) var header: HeaderSection?
    /// Octets of the header fields: where the empty line (or the first line of body) starts in
    /// the message, once the end of the header section is seen.
    public private(set) var headerLength: Int?
    /// See `Scanned.malformedLine`.
    public private(set) var malformedLine: Int?
    private var headerLines = 0

    /// Where what follows the header section starts, reported by the `append` that found the end:
    /// `carried` (octets of earlier appends that turned out to follow the header: the CR of the
    /// empty line, or the start of a line that is no field) and then the appended bytes from
    /// `offset` on.
    public struct HeaderEnd: Sendable {
        public var carried: [UInt8]
        public var offset: Int
    }

    private var signatures: [Result<DKIMSignature, DKIMSignature.Invalid>] = []
    private var hashers: [BodyHashRequest: BodyHasher] = [:]
    private var bodyOctets = 0

    /// - Parameter now: Unix seconds, for signature expiry.
    public init(now: Int, dkim: Bool = true, maximumHeaderOctets: Int = 262_144, maximumSignatures: Int = 10) {
        self.now = now
        self.dkim = dkim
        self.maximumHeaderOctets = maximumHeaderOctets
        self.maximumSignatures = maximumSignatures
    }

    public var headerTooLarge: Bool { self.position == .overflow }

    /// Scans more of the message; returns where the body starts when these bytes end the header
    /// section.
    @discardableResult
    public mutating func append<C: Collection<UInt8>>(_ bytes: C) -> HeaderEnd? {
        switch self.position {
        case .body:
            self.feedBody(bytes)
            return nil
        case .overflow:
            return nil
        case .lineStart, .lineStartCR, .name, .nameSpace, .value:
            break
        }
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            switch (self.position, byte) {
            case (.lineStart, 0x0A), (.lineStartCR, 0x0A):
                // The empty line: the body starts after it.
                return self.headerEnds(bytes, at: index, malformed: false)
            case (.lineStart, 0x0D):
                self.position = .lineStartCR
            case (.lineStart, 0x20), (.lineStart, 0x09):
                guard self.lineStart > 0 else { return self.headerEnds(bytes, at: index, malformed: true) }
                self.position = .value
            case (.lineStart, 0x21...0x7E) where byte != 0x3A:
                self.position = .name
            case (.name, 0x21...0x7E) where byte != 0x3A:
                break
            case (.name, 0x3A), (.nameSpace, 0x3A):
                self.position = .value
            case (.name, 0x20), (.name, 0x09), (.nameSpace, 0x20), (.nameSpace, 0x09):
                self.position = .nameSpace  // obsolete syntax: white space before the colon
            case (.value, 0x0A):
                self.position = .lineStart
            case (.value, _):
                break
            default:
                // Not a header line (no name, no colon, a bare CR at its start): body from here.
                return self.headerEnds(bytes, at: index, malformed: true)
            }
            self.headerOctets.append(byte)
            index = bytes.index(after: index)
            if self.position == .lineStart {
                self.lineStart = self.headerOctets.count
                self.headerLines += 1
            }
            if self.headerOctets.count > self.maximumHeaderOctets {
                self.position = .overflow
                self.headerOctets = []
                return nil
            }
        }
        return nil
    }

    /// The header section ends before the line being read: the empty line (`index` at its LF;
    /// the body starts after it) or a line that is no header field (it and all after it are
    /// body). That line's octets seen so far and the rest of `bytes` are what follows the header.
    private mutating func headerEnds<C: Collection<UInt8>>(_ bytes: C, at index: C.Index, malformed: Bool) -> HeaderEnd
    {
        let carried = Array(self.headerOctets[self.lineStart...])
        self.endHeader()
        if malformed {
            self.malformedLine = self.headerLines + 1
            self.feedBody(carried)
            self.feedBody(bytes[index...])
        } else {
            self.feedBody(bytes[bytes.index(after: index)...])
        }
        return HeaderEnd(carried: carried, offset: bytes.distance(from: bytes.startIndex, to: index))
    }

    /// The header section is `headerOctets` up to `lineStart`, which is also its length in the
    /// message (everything so far went through `headerOctets`).
    private mutating func endHeader() {
        self.position = .body
        self.headerLength = self.lineStart
        let header = HeaderSection(parsing: self.headerOctets[..<self.lineStart])
        self.headerOctets = []
        self.header = header
        guard self.dkim else { return }
        for field in header.fields(named: "DKIM-Signature").prefix(self.maximumSignatures) {
            let signature = Result { () throws(DKIMSignature.Invalid) in try DKIMSignature(field: field, now: self.now)
            }
            self.signatures.append(signature)
            if case .success(let valid) = signature, self.hashers[valid.bodyHashRequest] == nil {
                self.hashers[valid.bodyHashRequest] = BodyHasher(valid.bodyHashRequest)
            }
        }
    }

    private mutating func feedBody(_ bytes: some Collection<UInt8>) {
        self.bodyOctets += bytes.count
        for key in self.hashers.keys { self.hashers[key]!.update(bytes) }
    }

    /// Ends the message. A message without an empty line is all header.
    public mutating func finish() -> Scanned {
        switch self.position {
        case .name, .nameSpace, .lineStartCR:
            // The last line ends before its colon (or is a lone CR): no header field.
            self.malformedLine = self.headerLines + 1
            self.lineStart = self.headerOctets.count
            self.endHeader()
        case .lineStart, .value:
            self.lineStart = self.headerOctets.count
            self.endHeader()
        case .body, .overflow:
            break
        }
        var hashes: [BodyHashRequest: (hash: [UInt8], canonicalLength: Int)] = [:]
        for (key, var hasher) in self.hashers {
            let hash = hasher.finalize()
            hashes[key] = (hash, hasher.canonicalLength)
        }
        return Scanned(
            header: self.header,
            malformedLine: self.malformedLine,
            signatures: self.signatures,
            bodyHashes: hashes,
            bodyOctets: self.bodyOctets
        )
    }
}
