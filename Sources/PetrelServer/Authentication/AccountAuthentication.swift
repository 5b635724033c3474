import Accounts
import Logging
import NIOPosix
import SMTPCore
import SMTPServer

/// One SASL exchange against the account database: drives `SASLServer`, checks passwords on the
/// thread pool (yescrypt is slow by design), and counts failures per client address.
actor AccountAuthentication: AuthenticationExchange {
    private var sasl: SASLServer
    private let accounts: AccountStore
    private let failures: AuthenticationFailures
    private let threadPool: NIOThreadPool
    private let connection: ConnectionInfo
    private let hostname: String
    private let logger: Logger
    /// A hash to check against when the user does not exist, so that the answer takes as long.
    private let decoyHash: String

    init(
        sasl: SASLServer,
        accounts: AccountStore,
        failures: AuthenticationFailures,
        threadPool: NIOThreadPool,
        connection: ConnectionInfo,
        hostname: String,
        decoyHash: String,
        logger: Logger
    ) {
        self.sasl = sasl
        self.accounts = accounts
        self.failures = failures
        self.threadPool = threadPool
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

    /// Performs the machine's slow steps until it needs the client again or is done.
    private func run(_ first: SASLServer.Action) async -> ServerSession.AuthenticationStep {
        var action = first
        while true {
            switch action {
            case .challenge(let data):
                return .challenge(data)
            case .verifyPassword(let username, let password):
                let credentials = await self.credentials(username)
                let hash = credentials?.cryptHash ?? self.decoyHash
                let valid =
                    (try? await self.threadPool.runIfActive { PasswordHasher.verify(password, against: hash) }) ?? false
                action = self.sasl.passwordChecked(valid && credentials != nil)
            case .loadSCRAMCredentials(let username):
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
                self.failures.recordFailure(self.connection.remoteIP)
                // The user name is logged (it is what an operator needs); the password never is.
                self.logger.notice(
                    "authentication failed",
                    metadata: [
                        "session": "\(self.connection.id)", "client": "\(self.connection.remoteIP)",
                        "mechanism": "\(self.sasl.mechanism.rawValue)",
                    ]
                )
                return .failed(.authenticationFailed)
            }
        }
    }

    private func credentials(_ username: String) async -> PasswordCredentials? {
        guard let address = try? AccountAddress(validating: username) else { return nil }
        return try? await self.accounts.passwordCredentials(for: address)
    }
}
