import Accounts
import Logging
import SMTPCore

/// One SASL exchange against the account database: drives `SASLServer`, checks passwords on
/// their own threads (`PasswordChecks`: yescrypt is slow by design), and counts failures per
/// client and per account (`LoginFailures`).
///
/// Whether the account exists must not show: an unknown user's password is checked against a
/// decoy hash of the same cost, its SCRAM salt is derived from the server's stored secret and the
/// canonical name (so any spelling of a name gets the same salt, as a real user's lookup does,
/// and the salt survives restarts), and the per-account limits count names (canonical) whether
/// an account has them or not.
actor AccountAuthentication: AuthenticationExchange {
    private var sasl: SASLServer
    private let accounts: any AccountDirectory
    private let failures: LoginFailures
    private let checks: PasswordChecks
    private let connection: ConnectionInfo
    private let hostname: String
    private let logger: Logger
    /// A hash to check against when the user does not exist, so that the answer takes as long.
    private let decoyHash: String
    /// The account the client named, canonical, once it has named one that could exist (names
    /// that cannot be an address are counted against the client only: they are no account, and
    /// a table of them would grow without bound).
    private var account: String?
    /// SCRAM's server-first is out: the next response carries the proof, which is checked at once.
    private var awaitingProof = false
    /// The exchange succeeded, or its failure was counted: nothing left to count when it ends.
    private var settled = false

    init(
        sasl: SASLServer,
        accounts: any AccountDirectory,
        failures: LoginFailures,
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
        if self.awaitingProof {
            // SCRAM's guess is checked here, so here it takes its turn.
            self.awaitingProof = false
            guard await self.waitForTurn() else { return self.deferred() }
        }
        return await self.run(self.sasl.receive(response))
    }

    /// The client gave up with "*" (RFC 4954 §4): counted as a failure, or a client could probe
    /// (and learn each SCRAM salt) without ever being counted.
    func cancel() async -> ServerSession.AuthenticationStep {
        self.failed(reason: "cancelled")
        return .failed(.authenticationCancelled)
    }

    /// An exchange that named an account and was abandoned (the connection ended, or another
    /// AUTH began) counts as a failure too.
    deinit {
        if !self.settled, let account = self.account {
            self.failures.recordFailure(self.connection.remoteIP, account: account)
        }
    }

    /// Performs the machine's slow steps until it needs the client again or is done.
    private func run(_ first: SASLServer.Action) async -> ServerSession.AuthenticationStep {
        var action = first
        while true {
            switch action {
            case .challenge(let data):
                return .challenge(data)
            case .verifyPassword(let username, let password):
                self.name(username)
                guard await self.waitForTurn() else { return self.deferred() }
                let credentials = await self.credentials(username)
                guard let valid = await self.checks.verify(password, against: credentials?.cryptHash ?? self.decoyHash)
                else {
                    self.logger.warning(
                        "password checks overloaded",
                        metadata: ["session": "\(self.connection.id)", "limit": "\(self.checks.maximum)"]
                    )
                    self.settled = true  // nothing was checked: no failure to count
                    return .failed(.temporaryAuthenticationFailure)
                }
                action = self.sasl.passwordChecked(valid && credentials != nil)
            case .loadSCRAMCredentials(let username):
                self.name(username)
                action = self.sasl.credentialsLoaded(await self.credentials(username)?.scram)
                if case .challenge = action { self.awaitingProof = true }
            case .succeeded(let username):
                let user = (try? AccountAddress(validating: username))?.description ?? username
                self.settled = true
                self.failures.recordSuccess(self.connection.remoteIP, account: user)
                self.logger.info(
                    "authenticated",
                    metadata: [
                        "session": "\(self.connection.id)", "user": "\(user)",
                        "mechanism": "\(self.sasl.mechanism.rawValue)",
                    ]
                )
                return .succeeded(user: user)
            case .failed(.malformed(let reason)):
                // Once an account is named, giving up by garbling the exchange is a failure too.
                if self.account != nil { self.failed(reason: "malformed") }
                return .failed(.saslMalformed(reason))
            case .failed(.badCredentials):
                self.failed(reason: "bad credentials")
                return .failed(.authenticationFailed)
            }
        }
    }

    /// Notes the account a client named, when it could be one.
    private func name(_ username: String) {
        self.account = (try? AccountAddress(validating: username))?.description
    }

    /// Waits for the named account's turn (`LoginFailures.turn`); false when its checks
    /// are too many to wait for.
    private func waitForTurn() async -> Bool {
        guard let account = self.account else { return true }
        switch self.failures.turn(account: account, client: self.connection.remoteIP) {
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

    /// 454 for a check the account's turns cannot take now; it counts against the client (not
    /// the account), so that asking again and again costs what a guess costs.
    private func deferred() -> ServerSession.AuthenticationStep {
        self.failures.recordFailure(self.connection.remoteIP, account: nil)
        self.settled = true
        return .failed(.temporaryAuthenticationFailure)
    }

    private func failed(reason: String) {
        self.failures.recordFailure(self.connection.remoteIP, account: self.account)
        self.settled = true
        self.logFailure(reason: reason)
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
