import Crypto
import MailCore

/// The SASL mechanisms Petrel offers after TLS (RFC 4954 §4).
public enum SASLMechanism: String, CaseIterable, Hashable, Sendable {
    case plain = "PLAIN"
    case login = "LOGIN"
    case scramSHA256 = "SCRAM-SHA-256"
}

/// The server side of one SASL exchange as a state machine without I/O: PLAIN (RFC 4616), LOGIN
/// (draft-murchison-sasl-login) and SCRAM-SHA-256 (RFC 5802, RFC 7677).
///
/// The caller feeds client responses (already base64-decoded) and performs the slow steps the
/// machine asks for: checking a password against its crypt(3) hash, loading SCRAM credentials.
public struct SASLServer: Sendable {
    public enum Action: Hashable, Sendable {
        /// Send this challenge (to be base64-encoded in a 334 reply) and wait for the response.
        case challenge([UInt8])
        /// Check the password against the stored hash, then call `passwordChecked`.
        case verifyPassword(username: String, password: String)
        /// Look up the user's SCRAM credentials, then call `credentialsLoaded`.
        case loadSCRAMCredentials(username: String)
        case succeeded(username: String)
        case failed(Failure)
    }

    public enum Failure: Hashable, Sendable {
        /// The client's message does not follow the mechanism (501 5.5.2).
        case malformed(String)
        /// Wrong user or password (535 5.7.8); deliberately the same for both.
        case badCredentials
    }

    enum State: Hashable, Sendable {
        case start
        case loginUsername
        case loginPassword(username: String)
        case checkingPassword(username: String)
        case scramAwaitingCredentials(SCRAMFirst)
        case scramServerFirstSent(SCRAMFirst, serverFirst: String, credentials: SCRAMCredentials?)
        case scramServerFinalSent(username: String)
        case done
    }

    struct SCRAMFirst: Hashable, Sendable {
        var gs2Header: String
        var clientFirstBare: String
        var username: String
        var clientNonce: String
    }

    public let mechanism: SASLMechanism
    private var state = State.start
    private let serverNonce: String
    private let decoySecret: [UInt8]

    /// - Parameters:
    ///   - serverNonce: fresh printable random text for SCRAM (no ","), from the caller.
    ///   - decoySecret: the server's stored random bytes; an unknown SCRAM user gets a salt derived
    ///     from it and the canonical name, the same every time and after every restart, so that
    ///     the exchange does not reveal which users exist.
    public init(mechanism: SASLMechanism, serverNonce: String, decoySecret: [UInt8]) {
        self.mechanism = mechanism
        self.serverNonce = serverNonce
        self.decoySecret = decoySecret
    }

    /// Starts the exchange with the AUTH command's initial response, if there was one.
    public mutating func start(initialResponse: [UInt8]?) -> Action {
        guard self.state == .start else { return self.fail(.malformed("exchange already started")) }
        switch self.mechanism {
        case .plain:
            guard let initialResponse else { return .challenge([]) }
            return self.plain(initialResponse)
        case .login:
            guard let initialResponse else {
                self.state = .loginUsername
                return .challenge(Array("Username:".utf8))
            }
            return self.loginUsername(initialResponse)
        case .scramSHA256:
            guard let initialResponse else { return .challenge([]) }
            return self.scramClientFirst(initialResponse)
        }
    }

    /// The client's answer to the last challenge.
    public mutating func receive(_ response: [UInt8]) -> Action {
        switch (self.mechanism, self.state) {
        case (.plain, .start):
            return self.plain(response)
        case (.login, .loginUsername):
            return self.loginUsername(response)
        case (.login, .loginPassword(let username)):
            guard let password = String(validating: response, as: UTF8.self), !password.isEmpty else {
                return self.fail(.malformed("the password must be UTF-8 and not empty"))
            }
            self.state = .checkingPassword(username: username)
            return .verifyPassword(username: username, password: password)
        case (.scramSHA256, .start):
            return self.scramClientFirst(response)
        case (.scramSHA256, .scramServerFirstSent(let first, let serverFirst, let credentials)):
            return self.scramClientFinal(response, first: first, serverFirst: serverFirst, credentials: credentials)
        case (.scramSHA256, .scramServerFinalSent(let username)):
            // RFC 4954 §4: the client acknowledges the server-final message with an empty response.
            guard response.isEmpty else { return self.fail(.malformed("expected an empty response")) }
            self.state = .done
            return .succeeded(username: username)
        default:
            return self.fail(.malformed("unexpected response"))
        }
    }

    public mutating func passwordChecked(_ valid: Bool) -> Action {
        guard case .checkingPassword(let username) = self.state else {
            return self.fail(.malformed("no check pending"))
        }
        self.state = .done
        return valid ? .succeeded(username: username) : .failed(.badCredentials)
    }

    /// The user's SCRAM credentials, or nil when there is no such user (or no password).
    public mutating func credentialsLoaded(_ credentials: SCRAMCredentials?) -> Action {
        guard case .scramAwaitingCredentials(let first) = self.state else {
            return self.fail(.malformed("no lookup pending"))
        }
        let salt: [UInt8]
        let iterations: Int
        if let credentials {
            salt = credentials.salt
            iterations = credentials.iterations
        } else {
            // Derived from the name as the account lookup reads it, so that "Alice@X" and
            // "alice@x" get one salt for an unknown user as they do for a real one.
            let key = SymmetricKey(data: self.decoySecret)
            let name = Array(Self.canonicalName(first.username).utf8)
            salt = Array(HMAC<SHA256>.authenticationCode(for: name, using: key).prefix(16))
            iterations = SCRAMCredentials.defaultIterations
        }
        let serverFirst = "r=\(first.clientNonce)\(self.serverNonce),s=\(Base64.encode(salt)),i=\(iterations)"
        self.state = .scramServerFirstSent(first, serverFirst: serverFirst, credentials: credentials)
        return .challenge(Array(serverFirst.utf8))
    }

    // MARK: - PLAIN and LOGIN

    /// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` (RFC 4616 §2).
    private mutating func plain(_ message: [UInt8]) -> Action {
        let parts = message.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3,
            let authzid = String(validating: parts[0], as: UTF8.self),
            let authcid = String(validating: parts[1], as: UTF8.self),
            let password = String(validating: parts[2], as: UTF8.self),
            !authcid.isEmpty, !password.isEmpty
        else {
            return self.fail(.malformed("PLAIN needs authzid NUL authcid NUL password"))
        }
        // Acting as another user is not supported: an authorization identity must be oneself.
        guard authzid.isEmpty || authzid.lowercased() == authcid.lowercased() else {
            return self.fail(.badCredentials)
        }
        self.state = .checkingPassword(username: authcid)
        return .verifyPassword(username: authcid, password: password)
    }

    private mutating func loginUsername(_ response: [UInt8]) -> Action {
        guard let username = String(validating: response, as: UTF8.self), !username.isEmpty else {
            return self.fail(.malformed("the user name must be UTF-8 and not empty"))
        }
        self.state = .loginPassword(username: username)
        return .challenge(Array("Password:".utf8))
    }

    // MARK: - SCRAM-SHA-256

    /// `client-first-message = gs2-header client-first-message-bare` (RFC 5802 §7).
    private mutating func scramClientFirst(_ response: [UInt8]) -> Action {
        guard let text = String(validating: response, as: UTF8.self) else {
            return self.fail(.malformed("not UTF-8"))
        }
        let fields = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { return self.fail(.malformed("not a SCRAM client-first message")) }
        switch fields[0] {
        case "n", "y":
            // "y": the client could bind to the channel but thinks we cannot; we do not offer
            // SCRAM-SHA-256-PLUS, so that is right, and there is no downgrade to detect.
            break
        default:
            return self.fail(.malformed("channel binding is not supported (SCRAM-SHA-256-PLUS is not offered)"))
        }
        guard fields[1].isEmpty || fields[1].hasPrefix("a=") else { return self.fail(.malformed("bad authzid")) }
        let bare = String(fields[2])
        let attributes = bare.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 2, attributes[0].hasPrefix("n="), attributes[1].hasPrefix("r="),
            let username = Self.decodeSASLName(attributes[0].dropFirst(2)),
            !username.isEmpty
        else {
            return self.fail(.malformed("client-first needs n=user,r=nonce (and no mandatory extensions)"))
        }
        let nonce = String(attributes[1].dropFirst(2))
        guard !nonce.isEmpty, nonce.utf8.allSatisfy({ (0x21...0x7E).contains($0) && $0 != 0x2C }) else {
            return self.fail(.malformed("bad nonce"))
        }
        // Optional extensions: attr-val = ALPHA "=" value.
        for extra in attributes.dropFirst(2) {
            guard extra.count >= 2, extra.first!.isLetter, extra.first!.isASCII, extra.dropFirst().first == "=" else {
                return self.fail(.malformed("bad attribute \(extra)"))
            }
        }
        if !fields[1].isEmpty {
            guard let authzid = Self.decodeSASLName(fields[1].dropFirst(2)),
                authzid.lowercased() == username.lowercased()
            else { return self.fail(.badCredentials) }
        }
        let first = SCRAMFirst(
            gs2Header: "\(fields[0]),\(fields[1]),",
            clientFirstBare: bare,
            username: username,
            clientNonce: nonce
        )
        self.state = .scramAwaitingCredentials(first)
        return .loadSCRAMCredentials(username: username)
    }

    /// `client-final-message = channel-binding "," nonce ["," extensions] "," proof`.
    private mutating func scramClientFinal(
        _ response: [UInt8],
        first: SCRAMFirst,
        serverFirst: String,
        credentials: SCRAMCredentials?
    ) -> Action {
        // The proof is the last attribute; what precedes it is part of AuthMessage.
        guard let text = String(validating: response, as: UTF8.self),
            let proofStart = Array(text.utf8).lastIndex(of: 0x2C).map({
                text.utf8.index(text.utf8.startIndex, offsetBy: $0)
            }),
            text[proofStart...].hasPrefix(",p=")
        else {
            return self.fail(.malformed("not a SCRAM client-final message"))
        }
        let withoutProof = String(text[..<proofStart])
        let attributes = withoutProof.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 2, attributes[0].hasPrefix("c="), attributes[1].hasPrefix("r="),
            let binding = Base64.decode(String(attributes[0].dropFirst(2))),
            let proof = Base64.decode(String(text[proofStart...].dropFirst(3))),
            proof.count == 32
        else {
            return self.fail(.malformed("client-final needs c=, r= and p="))
        }
        guard binding == Array(first.gs2Header.utf8) else {
            return self.fail(.malformed("channel binding data does not match"))
        }
        guard attributes[1].dropFirst(2) == first.clientNonce + self.serverNonce else {
            return self.fail(.malformed("nonce mismatch"))
        }
        guard let credentials else {
            self.state = .done
            return .failed(.badCredentials)
        }
        let authMessage = Array("\(first.clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        let clientSignature = Array(
            HMAC<SHA256>.authenticationCode(for: authMessage, using: SymmetricKey(data: credentials.storedKey))
        )
        let clientKey = zip(proof, clientSignature).map { $0 ^ $1 }
        let computedStoredKey = Array(SHA256.hash(data: clientKey))
        guard constantTimeEqual(computedStoredKey, credentials.storedKey) else {
            self.state = .done
            return .failed(.badCredentials)
        }
        let serverSignature = HMAC<SHA256>.authenticationCode(
            for: authMessage,
            using: SymmetricKey(data: credentials.serverKey)
        )
        self.state = .scramServerFinalSent(username: first.username)
        return .challenge(Array("v=\(Base64.encode(Array(serverSignature)))".utf8))
    }

    /// A user name as the account directory reads it (`AccountAddress`'s canonical form), or the
    /// name in lower case when it cannot be an account at all.
    public static func canonicalName(_ username: String) -> String {
        (try? AccountAddress(validating: username))?.description ?? username.lowercased()
    }

    /// saslname: "=2C" is ",", "=3D" is "=", any other "=" is an error (RFC 5802 §5.1).
    static func decodeSASLName(_ text: Substring) -> String? {
        var result = ""
        var rest = text[...]
        while let first = rest.first {
            if first == "=" {
                if rest.hasPrefix("=2C") {
                    result.append(",")
                } else if rest.hasPrefix("=3D") {
                    result.append("=")
                } else {
                    return nil
                }
                rest = rest.dropFirst(3)
            } else {
                result.append(first)
                rest = rest.dropFirst()
            }
        }
        return result
    }

    private mutating func fail(_ failure: Failure) -> Action {
        self.state = .done
        return .failed(failure)
    }
}

/// Compares without an early exit, so timing does not tell how much matched.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}
