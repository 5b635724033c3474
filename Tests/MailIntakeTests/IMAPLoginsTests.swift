import IMAPCore
import SMTPCore
import Testing

@testable import MailIntake

/// IMAP's logins go through submission's SASL exchange; its outcomes in IMAP's words.
@Suite struct IMAPLoginsTests {
    @Test func eachOutcomeHasItsResponse() {
        let table: [(ServerSession.AuthenticationStep, IMAPAuthenticationStep)] = [
            (.challenge([1, 2]), .challenge([1, 2])),
            (.succeeded(user: "a@example.test"), .succeeded(user: "a@example.test")),
            (.failed(.authenticationFailed), .failed(.authenticationFailed, "invalid credentials", close: false)),
            (
                .failed(.temporaryAuthenticationFailure),
                .failed(.unavailable, "cannot check the password now; try again later", close: false)
            ),
            (
                .failed(.tooManyAuthenticationFailures(hostname: "mx.test")),
                .failed(.unavailable, "too many failed logins; try again later", close: true)
            ),
            (.failed(.authenticationCancelled), .failed(nil, "authentication cancelled", close: false)),
        ]
        for (smtp, imap) in table {
            #expect(IMAPLogins.Exchange.step(smtp) == imap, "\(smtp)")
        }
        guard case .failed(nil, let text, close: false) = IMAPLogins.Exchange.step(.failed(.saslMalformed("no NUL")))
        else {
            Issue.record("a malformed exchange")
            return
        }
        #expect(text.contains("no NUL"))
    }
}
