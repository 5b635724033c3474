import PetrelTestSupport
import SMTPDialogs
import ServerTestSupport
import Testing

/// Every dialogue of Tests/Dialogs against a live server on a loopback port, with the mailboxes
/// the in-memory `DialogTests` know (alice and bob at example.test). The same files run there.
@Suite struct LiveDialogTests {
    static let dialogs: [Dialog] = (try? Dialog.all()) ?? []

    @Test(arguments: Self.dialogs)
    func live(_ dialog: Dialog) async throws {
        let server = try await LiveServerTests.exampleServer()
        let client = try await server.connect()
        let mismatch = try await dialog.play(
            host: server.server.configuration.hostname,
            send: { octets in try await client.sendRaw(octets) },
            nextReply: {
                guard let reply = await client.read().reply else { return nil }
                return reply.lines.enumerated().map { index, text in
                    "\(reply.code)\(index == reply.lines.count - 1 ? " " : "-")\(text)"
                }
            }
        )
        #expect(mismatch == nil, "\(mismatch ?? "")")
        await client.close()
        try await server.stop()
    }
}
