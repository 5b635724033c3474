import Dispatch
import PetrelTestSupport
import Testing

@testable import MailIntake

/// Password checks run on threads of their own, a bounded number at a time: past the bound a
/// check is refused at once (the caller answers 454) rather than queued without end.
@Suite struct PasswordChecksTests {
    @Test func pastTheBoundACheckIsRefusedAtOnce() async throws {
        let release = DispatchSemaphore(value: 0)
        let checks = PasswordChecks(threads: 1, maximum: 2) { password, _ in
            release.wait()  // each check is held until the test lets it go
            return password == "right"
        }
        async let first = checks.verify("right", against: "hash")
        async let second = checks.verify("wrong", against: "hash")
        // One running (its thread held), one waiting for the thread: the bound.
        #expect(await eventually(within: .seconds(5)) { checks.inFlight == 2 })
        #expect(await checks.verify("third", against: "hash") == nil, "over the bound: refused at once")
        release.signal()
        release.signal()
        #expect(await first == true)
        #expect(await second == false)
        #expect(checks.inFlight == 0)
        release.signal()
        #expect(await checks.verify("right", against: "hash") == true, "room again")
        await checks.shutdown()
    }
}
