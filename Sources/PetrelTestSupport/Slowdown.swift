import Foundation

/// How many times slower than a plain build the code under test runs.
///
/// `Scripts/sanitize.sh` sets `PETREL_TEST_SLOWDOWN` (ThreadSanitizer slows Swift code five to
/// fifteen times, AddressSanitizer two to three), and a test stretches each bound it waits within
/// by it: a reply within 10 s, a DNS answer within 3 s. An instrumented run then fails on a
/// sanitizer's report, not on the clock. Only tests read it; `petrel` itself never does.
public enum Slowdown {
    public static let factor: Int = {
        guard let text = ProcessInfo.processInfo.environment["PETREL_TEST_SLOWDOWN"] else { return 1 }
        guard let factor = Int(text), factor >= 1 else {
            fatalError("PETREL_TEST_SLOWDOWN is \(text): it must be a whole number, 1 or more")
        }
        return factor
    }()
}

extension Duration {
    /// This bound, stretched by `Slowdown.factor`.
    public var stretched: Duration { self * Slowdown.factor }
}

/// Waits until `condition` holds, checking every 50 ms for up to `timeout` (stretched); returns
/// whether it came to hold. For a wait on something that should happen: a test that sleeps a fixed
/// time and then looks fails whenever the machine is slower than its author's.
public func eventually(
    within timeout: Duration = .seconds(20),
    _ condition: () throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout.stretched
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}

/// A new directory under /tmp.
public func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/petrel-test-XXXXXX".utf8CString)
    guard let created = mkdtemp(&template) else { throw POSIXError(.EIO) }
    return String(cString: created)
}
