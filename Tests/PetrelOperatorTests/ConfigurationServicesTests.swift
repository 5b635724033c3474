import PetrelConfiguration
import PetrelOperator
import Testing

/// The services a configuration describes.
struct ConfigurationServicesTests {
    @Test func theDNSClientAsksTheConfiguredServersInOrder() throws {
        let configuration = try ConfigurationLoader.parse(
            """
            hostname = "mx.example.test"
            [dns]
            servers = ["127.0.0.1:5353", "::1", "192.0.2.53"]
            """,
            source: "petrel.toml",
            baseDirectory: "/etc/petrel",
            hostname: "host.example"
        )
        #expect(configuration.makeDNSClient().configuration.servers.map(\.port) == [5353, 53, 53])
        #expect(configuration.files.queue == configuration.dataDirectory + "/queue")
    }
}
