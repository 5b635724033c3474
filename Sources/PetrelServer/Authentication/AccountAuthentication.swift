import Accounts
import Logging
import SMTPCore
import SMTPServer

/// One SASL exchange against the account database: drives `SASLServer`, checks passwords on
/// their own threads (`PasswordChecks`: yescrypt is slow by design), and counts failures per
/// client and per account (`AuthenticationFailures`).
///
/// Whether the account exists must not show: an unknown user's password is checked against a
/// decoy hash of the same cost, its SCRAM salt is derived from the server's stored secret and the
/// canonical name (so any spelling of a name gets the same salt, as a real user's lookup does,
/// and the salt survives restarts), and the per-account limits count names as typed, existing or
/// not.
actor AccountAuthentication: AuthenticationExchange {
    private var sasl: SASLServer
    private let accounts: AccountStore
    private let failures: AuthenticationFailures
    private let checks: PasswordChecks
    private let connection: ConnectionInfo
    private let hostname: String
    private let logger: Logger
    /// A hash to check against when the user does not exist, so that the answer takes as long.
    private let decoyHash: String
    /// The account the client named, canonical, once it has named one.
    private var account: String?

    init(
        sasl: SASLServer,
        accounts: AccountStore,
        failures: AuthenticationFailures,
        checks: PasswordChecks,
        connection: ConnectionInfo,
        hostname: String,
        decoyHash: String,
        logger: Logger
    ) {
        self.sasl = sasl
        self.accounts = accounts
        self.failures = failures
        self.checks = checks
        self.connection = connection
        self.hostname = hostname
        self.decoyHash = decoyHash
        self.logger = logger
    }

    func start(initialResponse: [UInt8]?) async -> ServerSession.AuthenticationStep {
        if self.failures.isBlocked(self.connection.remoteIP) {
            return .failed(.tooManyAuthenticationFailures(hostname: self.hostname))
        }
        return await self.run(self.sasl.start(initialResponse: initialResponse))
    }

    func receive(_ response: [UInt8]) async -> ServerSession.AuthenticationStep {
        await self.run(self.sasl.receive(response))
    }

    /// The client gave up with "*" (RFC 4954 §4): counted as a failure, or a client could probe
    /// (and learn each SCRAM salt) without ever being counted.
    func cancel() async -> ServerSession.AuthenticationStep {
        self.failures.recordFailure(self.connection.remoteIP, account: self.account)
        self.logFailure(reason: "cancelled")
        return .failed(.authenticationCancelled)
    }

    /// Performs the machine's slow steps until it needs the client again or is done.
    private func run(_ first: SASLServer.Action) async -> ServerSession.AuthenticationStep {
        var action = first
        while true {
            switch action {
            case .challenge(let data):
                return .challenge(data)
            case .verifyPassword(let username, let password):
                guard await self.waitForTurn(username) else { return .failed(.temporaryAuthenticationFailure) }
                let credentials = await self.credentials(username)
                guard let valid = await self.checks.verify(password, against: credentials?.cryptHash ?? self.decoyHash)
                else {
                    self.logger.warning(
                        "password checks overloaded",
                        metadata: ["session": "\(self.connection.id)", "limit": "\(self.checks.maximum)"]
                    )
                    return .failed(.temporaryAuthenticationFailure)
                }
                action = self.sasl.passwordChecked(valid && credentials != nil)
            case .loadSCRAMCredentials(let username):
                guard await self.waitForTurn(username) else { return .failed(.temporaryAuthenticationFailure) }
                action = self.sasl.credentialsLoaded(await self.credentials(username)?.scram)
            case .succeeded(let username):
                let user = (try? AccountAddress(validating: username))?.description ?? username
                self.logger.info(
                    "authenticated",
                    metadata: [
                        "session": "\(self.connection.id)", "user": "\(user)",
                        "mechanism": "\(self.sasl.mechanism.rawValue)",
                    ]
                )
                return .succeeded(user: user)
            case .failed(.malformed(let reason)):
                return .failed(.saslMalformed(reason))
            case .failed(.badCredentials):
                self.failures.recordFailure(self.connection.remoteIP, account: self.account)
                self.logFailure(reason: "bad credentials")
                return .failed(.authenticationFailed)
            }
        }
    }

    /// Waits for this account's turn (`AuthenticationFailures.turn`); false when its checks are
    /// too many to wait for.
    private func waitForTurn(_ username: String) async -> Bool {
        let account = SASLServer.canonicalName(username)
        self.account = account
        switch self.failures.turn(account: account) {
        case .busy:
            self.logger.notice(
                "authentication deferred",
                metadata: [
                    "session": "\(self.connection.id)", "client": "\(self.connection.remoteIP)",
                    "user": "\(account)", "reason": "too many recent failures for this account",
                ]
            )
            return false
        case .after(let wait):
            if wait > .zero { try? await Task.sleep(for: wait) }
            return true
        }
    }

    private func logFailure(reason: String) {
        // The user name is logged (it is what an operator needs); the password never is.
        self.logger.notice(
            "authentication failed",
            metadata: [
                "session": "\(self.connection.id)", "client": "\(self.connection.remoteIP)",
                "mechanism": "\(self.sasl.mechanism.rawValue)", "user": "\(self.account ?? "-")",
                "reason": "\(reason)",
            ]
        )
    }

    private func credentials(_ username: String) async -> PasswordCredentials? {
        guard let address = try? AccountAddress(validating: username) else { return nil }
        return try? await self.accounts.passwordCredentials(for: address)
    }
}
