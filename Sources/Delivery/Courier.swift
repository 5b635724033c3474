import MailCore
import SMTPClient
import SMTPCore

/// What became of one recipient in one attempt. Delivery's own type: each courier says in it
/// what its transport answered, so no connection or session type reaches the runner (of
/// SMTPClient it sees only `OutgoingMessage`, what a parcel's message is streamed as, and
/// `TLSDetails`, what a try logs).
public enum DeliveryResult: Hashable, Sendable {
    case delivered(SMTPReply)
    /// A 4xx, a lost connection, a timeout, DNS trouble: tried again later.
    case deferred(SMTPReply)
    /// A 5xx or an address that can never work: reported to the sender.
    case failed(SMTPReply)

    public var reply: SMTPReply {
        switch self {
        case .delivered(let reply), .deferred(let reply), .failed(let reply): return reply
        }
    }

    var isDeferred: Bool {
        if case .deferred = self { return true }
        return false
    }
}

/// One transaction a courier is to carry: a queued message to some of its recipients, all with
/// the same destination.
public struct Parcel: Sendable {
    /// The queue id, for the logs.
    public var id: String
    public var sender: ReversePath
    public var recipients: [Mailbox]
    public var destination: Destination
    public var message: any OutgoingMessage
    /// Octets the message will have on the wire (before dot-stuffing), for SIZE.
    public var size: Int
    /// BODY=8BITMIME content (RFC 6152).
    public var eightBit: Bool
    /// SMTPUTF8 addresses or header fields (RFC 6531).
    public var smtpUTF8: Bool

    public init(
        id: String,
        sender: ReversePath,
        recipients: [Mailbox],
        destination: Destination,
        message: any OutgoingMessage,
        size: Int,
        eightBit: Bool,
        smtpUTF8: Bool
    ) {
        self.id = id
        self.sender = sender
        self.recipients = recipients
        self.destination = destination
        self.message = message
        self.size = size
        self.eightBit = eightBit
        self.smtpUTF8 = smtpUTF8
    }
}

/// What a courier did with a parcel: every host it tried, and the result for each recipient.
public struct CourierReport: Sendable {
    /// One try: where, how, and what it gave each recipient (in the parcel's order). The runner
    /// logs one line per recipient and try.
    public struct Try: Sendable {
        /// `host[address]`, `local`; nil when nothing was contacted (a bounce by DNS).
        public var via: String?
        public var tls: TLSDetails?
        public var results: [DeliveryResult]

        public init(via: String?, tls: TLSDetails? = nil, results: [DeliveryResult]) {
            self.via = via
            self.tls = tls
            self.results = results
        }
    }

    public var tries: [Try]
    /// The final result for each recipient, in the parcel's order.
    public var results: [DeliveryResult]
    /// The server that took a position on the recipients, for reports (RFC 3464 Remote-MTA).
    public var remoteMTA: String?

    public init(tries: [Try], results: [DeliveryResult], remoteMTA: String? = nil) {
        self.tries = tries
        self.results = results
        self.remoteMTA = remoteMTA
    }

    /// One try that settles every recipient.
    public init(via: String?, results: [DeliveryResult]) {
        self.init(tries: [Try(via: via, results: results)], results: results)
    }

    /// One result for each of a parcel's `count` recipients: any a (defective) courier gave
    /// none is deferred, so it is tried again later rather than left due at once for ever.
    func results(count: Int) -> [DeliveryResult] {
        (0..<count).map {
            $0 < self.results.count
                ? self.results[$0]
                : .deferred(SMTPReply(451, EnhancedStatusCode(4, 3, 0), "no result from the courier"))
        }
    }
}

/// Carries parcels to one kind of destination: `LocalCourier` into our mailboxes,
/// `RemoteCourier` to other domains' MX hosts or the relay. The queue runner decides what is
/// due and records the results; couriers only deliver. The runner's tests use scripted ones.
public protocol Courier: Sendable {
    /// Delivers the parcel; one result per recipient, in order, whatever happens.
    func deliver(_ parcel: Parcel) async -> CourierReport
}
