import SMTPCore
import SMTPDialogs
import Testing

/// Every dialogue of Tests/Dialogs, in memory: the framer and the server's own `SessionDriver`,
/// with the mailboxes the live server of `LiveDialogTests` has. The same files run there.
@Suite struct DialogTests {
    static let dialogs: [Dialog] = (try? Dialog.all()) ?? []

    /// The settings of a server on its defaults, as the live tests run it.
    static let configuration = ServerSession.Configuration(
        hostname: "mx.petrel.test",
        limits: SMTPLimits(messageSize: 26_214_400, recipients: 100, errors: 10)
    )

    @Test func theDialoguesAreRead() throws {
        #expect(try Dialog.all().count == Self.dialogs.count)
        #expect(!Self.dialogs.isEmpty)
    }

    @Test(arguments: Self.dialogs)
    func inMemory(_ dialog: Dialog) async throws {
        var harness = await SessionHarness(
            configuration: Self.configuration,
            directory: (["example.test", "other.test"], ["alice@example.test", "bob@example.test"])
        )
        var next = 0
        let mismatch = try await dialog.play(
            host: "mx.petrel.test",
            send: { octets in await harness.send(octets: octets) },
            nextReply: {
                guard next < harness.replies.count else { return nil }
                defer { next += 1 }
                return harness.replies[next].description.split(separator: "\r\n").map(String.init)
            }
        )
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }
}
