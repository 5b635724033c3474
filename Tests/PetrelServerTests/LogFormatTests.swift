import Foundation
import Logging
import PetrelConfiguration
import Testing

@testable import PetrelServer

/// `[log] format`: logfmt and JSON lines carry the same keys, in the same order, and no value
/// can break a line or the JSON.
struct LogFormatTests {
    static let metadata: Logger.Metadata = [
        "reply": "250 2.0.0 \"OK\"\nsecond line", "id": "1K1DGR72TC8JAE", "session": "7", "zeta": "\u{1}",
    ]

    @Test func text() {
        let line = LogfmtHandler.format(
            level: .info,
            message: "delivery",
            metadata: Self.metadata,
            timestamp: "2026-11-29T16:00:00.000Z"
        )
        #expect(
            line
                == "2026-11-29T16:00:00.000Z info delivery session=7 id=1K1DGR72TC8JAE reply=\"250 2.0.0 \\\"OK\\\" second line\" zeta=\u{1}\n"
        )
    }

    @Test func json() throws {
        let line = LogfmtHandler.json(
            level: .notice,
            message: "message \"accepted\"",
            metadata: Self.metadata,
            timestamp: "2026-11-29T16:00:00.000Z"
        )
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1, "one line")
        #expect(
            line.hasPrefix(
                "{\"time\":\"2026-11-29T16:00:00.000Z\",\"level\":\"notice\",\"msg\":\"message \\\"accepted\\\"\",\"session\":\"7\",\"id\":"
            )
        )
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["reply"] == "250 2.0.0 \"OK\"\nsecond line")
        #expect(object["zeta"] == "\u{1}")
        #expect(object["id"] == "1K1DGR72TC8JAE")
    }

    @Test func configured() throws {
        let configuration = try ConfigurationLoader.parse(
            "[log]\nformat = \"json\"\n",
            source: "t.toml",
            baseDirectory: "/",
            hostname: "h.example"
        )
        #expect(configuration.logFormat == .json)
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(
                "[log]\nformat = \"xml\"\n",
                source: "t.toml",
                baseDirectory: "/",
                hostname: "h"
            )
        }
    }
}
