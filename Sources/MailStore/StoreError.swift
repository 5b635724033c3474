import PetrelSystem
import SMTPCore

/// Why storing a message failed. `insufficientStorage` becomes `452 4.3.1` (RFC 3463: mail system
/// full), anything else a `451 4.3.0`: both temporary, so the sender keeps the message and retries.
public enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    case insufficientStorage(path: String)
    case io(operation: String, path: String, errno: Int32)
    case invalidMailboxName(String)

    init(operation: String, path: String, errno code: Int32) {
        if code == ENOSPC || code == EDQUOT {
            self = .insufficientStorage(path: path)
        } else {
            self = .io(operation: operation, path: path, errno: code)
        }
    }

    public var description: String {
        switch self {
        case .insufficientStorage(let path):
            return "no space left on the device holding \(path)"
        case .io(let operation, let path, let code):
            return "\(operation) \(path): \(String(cString: strerror(code)))"
        case .invalidMailboxName(let name):
            return "invalid mailbox name \(name)"
        }
    }
}

extension StoreError {
    /// What an SMTP client is told when its message could not be stored: always temporary.
    public var smtpReply: SMTPReply {
        switch self {
        case .insufficientStorage: return .insufficientStorage
        case .io, .invalidMailboxName: return .localError
        }
    }
}
