import SMTPDialogs
import Testing

/// Plays every `.dialog` file of `Tests/IMAPDialogs` through an in-memory connection
/// (`IMAPHarness`). A protocol regression is one new file there.
@Suite struct IMAPDialogTests {
    static let dialogs: [Dialog] = (try? Dialog.all(in: "IMAPDialogs")) ?? []

    @Test func theDialogsAreThere() throws {
        #expect(try Dialog.all(in: "IMAPDialogs").count == Self.dialogs.count)
        #expect(Self.dialogs.count >= 5)
    }

    @Test(arguments: Self.dialogs)
    func play(_ dialog: Dialog) async throws {
        let harness = try await IMAPHarness()
        await Self.play(dialog, on: harness)
        await harness.close()
    }

    static func play(_ dialog: Dialog, on harness: IMAPHarness) async {
        // `{uidvalidity}`: INBOX's, which the store takes from the clock.
        let validity: UInt32
        do {
            validity = try await harness.accounts.account(IMAPHarness.user).state(of: "INBOX").uidValidity
        } catch {
            Issue.record("\(dialog.name): \(error)")
            return
        }
        func fill(_ text: String) -> String { text.replacingOccurrences(of: "{uidvalidity}", with: "\(validity)") }
        for (index, step) in dialog.steps.enumerated() {
            let at = "\(dialog.name), step \(index + 1)"
            switch step {
            case .send(let octets):
                do {
                    let text = String(decoding: octets, as: UTF8.self)
                    try await harness.send(text.contains("{uidvalidity}") ? Array(fill(text).utf8) : octets)
                } catch {
                    Issue.record("\(at): \(error)")
                    return
                }
            case .line(let expected):
                let expected = fill(expected)
                let line = await harness.line()
                #expect(line == expected, "\(at)")
                if line != expected { return }
            case .linePrefix(let prefix):
                let prefix = fill(prefix)
                let line = await harness.line()
                #expect(line?.hasPrefix(prefix) == true, "\(at): \(line ?? "nothing") does not start with \(prefix)")
                if line?.hasPrefix(prefix) != true { return }
            case .reply:
                Issue.record("\(at): S* is SMTP's; IMAP dialogues match lines")
            }
        }
    }
}
