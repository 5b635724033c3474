import Foundation
import PetrelConfiguration
import Testing

/// Reading the configuration file itself (the text is ConfigurationTests' subject).
struct ConfigurationFileTests {
    @Test func aFileThatIsNotUTF8() throws {
        let path = NSTemporaryDirectory() + "petrel-\(UInt32.random(in: 0...UInt32.max)).toml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(Array("hostname = \"mx.example.test\"\n# caf".utf8) + [0xE9, 0x0A]).write(
            to: URL(fileURLWithPath: path)
        )
        do {
            _ = try ConfigurationLoader.load(path: path, hostname: "host.example")
            Issue.record("accepted")
        } catch {
            #expect(error.description == "\(path): line 2: not UTF-8 text (TOML files are UTF-8)")
        }
    }
}
