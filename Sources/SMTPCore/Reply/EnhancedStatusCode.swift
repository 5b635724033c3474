/// An enhanced mail system status code, `class.subject.detail` (RFC 3463), e.g. `5.1.1`.
public struct EnhancedStatusCode: Hashable, Sendable, CustomStringConvertible {
    public var statusClass: UInt8
    public var subject: UInt16
    public var detail: UInt16

    public init(_ statusClass: UInt8, _ subject: UInt16, _ detail: UInt16) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    public var description: String { "\(self.statusClass).\(self.subject).\(self.detail)" }
}
