import Accounts
import MailCore
import Testing

@Suite struct SASLServerTests {
    static let decoy = Array("decoy secret".utf8)

    /// RFC 7677 §3: the SCRAM-SHA-256 example exchange, user "user", password "pencil".
    @Test func rfc7677Example() throws {
        let credentials = try SCRAMCredentials.derive(
            password: "pencil",
            salt: try #require(Base64.decode("W22ZaJ0SNY7soEsUEjb6gQ==")),
            iterations: 4096
        )
        var server = SASLServer(
            mechanism: .scramSHA256,
            serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            decoySecret: Self.decoy
        )
        #expect(server.start(initialResponse: nil) == .challenge([]))
        #expect(
            server.receive(Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8)) == .loadSCRAMCredentials(username: "user")
        )
        #expect(
            server.credentialsLoaded(credentials)
                == .challenge(
                    Array("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8)
                )
        )
        let final =
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        #expect(
            server.receive(Array(final.utf8))
                == .challenge(Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        )
        #expect(server.receive([]) == .succeeded(username: "user"))
    }

    @Test func scramWrongPasswordFails() throws {
        let credentials = try SCRAMCredentials.derive(
            password: "not pencil",
            salt: Base64.decode("W22ZaJ0SNY7soEsUEjb6gQ==")!,
            iterations: 4096
        )
        var server = SASLServer(
            mechanism: .scramSHA256,
            serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            decoySecret: Self.decoy
        )
        _ = server.start(initialResponse: Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8))
        _ = server.credentialsLoaded(credentials)
        let final =
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        #expect(server.receive(Array(final.utf8)) == .failed(.badCredentials))
    }

    /// An unknown user gets the same kind of server-first message, with a salt that does not
    /// change between attempts, and fails only at the proof.
    @Test func scramUnknownUserIsNotRevealed() {
        func serverFirst(_ user: String = "ghost@example.test") -> SASLServer.Action {
            var server = SASLServer(mechanism: .scramSHA256, serverNonce: "SERVERNONCE", decoySecret: Self.decoy)
            _ = server.start(initialResponse: Array("n,,n=\(user),r=abc".utf8))
            return server.credentialsLoaded(nil)
        }
        #expect(serverFirst() == serverFirst())
        // Any spelling the account lookup reads as the same name gets the same decoy salt, as a
        // real user's would: before, the salt followed the spelling, which told unknown users apart.
        #expect(serverFirst("Ghost@Example.TEST") == serverFirst())
        #expect(serverFirst("GHOST@example.test") == serverFirst())
        #expect(serverFirst("other@example.test") != serverFirst())
        var server = SASLServer(mechanism: .scramSHA256, serverNonce: "SERVERNONCE", decoySecret: Self.decoy)
        _ = server.start(initialResponse: Array("n,,n=ghost@example.test,r=abc".utf8))
        guard case .challenge(let first) = server.credentialsLoaded(nil) else {
            Issue.record("no challenge")
            return
        }
        #expect(String(decoding: first, as: UTF8.self).hasSuffix(",i=\(SCRAMCredentials.defaultIterations)"))
        let proof = Base64.encode([UInt8](repeating: 1, count: 32))
        #expect(server.receive(Array("c=biws,r=abcSERVERNONCE,p=\(proof)".utf8)) == .failed(.badCredentials))
    }

    @Test(arguments: [
        "n,,n=user", "p=tls-exporter,,n=user,r=abc", "x,,n=user,r=abc", "n,,r=abc,n=user", "n,,n=us=2Ger,r=abc",
        "n,,n=,r=abc", "n,,n=user,r=", "n,,n=user,r=a,b", "n,b=x,n=user,r=abc", "n,,m=ext,n=user,r=abc",
    ])
    func scramMalformedClientFirst(message: String) {
        var server = SASLServer(mechanism: .scramSHA256, serverNonce: "N", decoySecret: Self.decoy)
        guard case .failed(.malformed) = server.start(initialResponse: Array(message.utf8)) else {
            Issue.record("accepted \(message)")
            return
        }
    }

    @Test func scramUserNameEscapes() {
        var server = SASLServer(mechanism: .scramSHA256, serverNonce: "N", decoySecret: Self.decoy)
        #expect(
            server.start(initialResponse: Array("n,,n=a=2Cb=3Dc,r=x".utf8)) == .loadSCRAMCredentials(username: "a,b=c")
        )
        var impostor = SASLServer(mechanism: .scramSHA256, serverNonce: "N", decoySecret: Self.decoy)
        #expect(impostor.start(initialResponse: Array("n,a=admin,n=user,r=x".utf8)) == .failed(.badCredentials))
    }

    @Test func scramTamperedFinalMessage() throws {
        let credentials = try SCRAMCredentials.derive(
            password: "pencil",
            salt: Base64.decode("W22ZaJ0SNY7soEsUEjb6gQ==")!,
            iterations: 4096
        )
        for final in [
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
        ] {
            var server = SASLServer(
                mechanism: .scramSHA256,
                serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                decoySecret: Self.decoy
            )
            _ = server.start(initialResponse: Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8))
            _ = server.credentialsLoaded(credentials)
            guard case .failed = server.receive(Array(final.utf8)) else {
                Issue.record("accepted \(final)")
                continue
            }
        }
    }

    @Test func plain() {
        var server = SASLServer(mechanism: .plain, serverNonce: "", decoySecret: Self.decoy)
        #expect(
            server.start(initialResponse: Array("\0alice@example.test\0secret".utf8))
                == .verifyPassword(username: "alice@example.test", password: "secret")
        )
        #expect(server.passwordChecked(true) == .succeeded(username: "alice@example.test"))

        var withAuthzid = SASLServer(mechanism: .plain, serverNonce: "", decoySecret: Self.decoy)
        #expect(withAuthzid.start(initialResponse: nil) == .challenge([]))
        #expect(
            withAuthzid.receive(Array("alice@example.test\0Alice@Example.test\0secret".utf8))
                == .verifyPassword(username: "Alice@Example.test", password: "secret")
        )
        #expect(withAuthzid.passwordChecked(false) == .failed(.badCredentials))

        var impostor = SASLServer(mechanism: .plain, serverNonce: "", decoySecret: Self.decoy)
        #expect(
            impostor.start(initialResponse: Array("bob@example.test\0alice@example.test\0secret".utf8))
                == .failed(.badCredentials)
        )
    }

    @Test(arguments: ["alice\0secret", "\0\0secret", "\0alice\0", "\0alice\0se\0cret\0", ""])
    func plainMalformed(message: String) {
        var server = SASLServer(mechanism: .plain, serverNonce: "", decoySecret: Self.decoy)
        let action = server.start(initialResponse: Array(message.utf8))
        if message == "\0alice\0se\0cret\0" {
            // A NUL inside the password is the password's business: three fields, as RFC 4616 says.
            #expect(action == .verifyPassword(username: "alice", password: "se\0cret\0"))
        } else {
            guard case .failed(.malformed) = action else {
                Issue.record("accepted \(message.debugDescription): \(action)")
                return
            }
        }
    }

    @Test func login() {
        var server = SASLServer(mechanism: .login, serverNonce: "", decoySecret: Self.decoy)
        #expect(server.start(initialResponse: nil) == .challenge(Array("Username:".utf8)))
        #expect(server.receive(Array("alice@example.test".utf8)) == .challenge(Array("Password:".utf8)))
        #expect(
            server.receive(Array("secret".utf8)) == .verifyPassword(username: "alice@example.test", password: "secret")
        )
        #expect(server.passwordChecked(true) == .succeeded(username: "alice@example.test"))

        var initial = SASLServer(mechanism: .login, serverNonce: "", decoySecret: Self.decoy)
        #expect(initial.start(initialResponse: Array("alice@example.test".utf8)) == .challenge(Array("Password:".utf8)))
        var empty = SASLServer(mechanism: .login, serverNonce: "", decoySecret: Self.decoy)
        _ = empty.start(initialResponse: nil)
        guard case .failed(.malformed) = empty.receive([]) else {
            Issue.record("empty user name accepted")
            return
        }
    }
}
