// swift-tools-version:6.0
import PackageDescription

// Module layout and dependency direction: docs/architecture.md.
// Pure cores (MailCore, SMTPCore, DNSCore, MailAuth) -> NIO glue (SMTPServer, SMTPClient,
// DNSClient) and services (MailStore, Accounts, Delivery) -> the configuration
// (PetrelConfiguration), the inbound pipeline (MailIntake), the operator's tools (PetrelOperator)
// -> composition root (PetrelServer) -> executable (petrel).
let package = Package(
    name: "petrel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "petrel", targets: ["petrel"]),
        // The pure cores, for the micro-benchmarks' own package (bench/Micro).
        .library(name: "PetrelCores", targets: ["SMTPCore", "MailCore", "MailAuth", "DNSCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
    ],
    targets: [
        .target(name: "MailCore"),
        .target(name: "DNSCore", dependencies: ["PetrelSystem"]),
        // The platform's C library (Glibc or Darwin), re-exported from one place.
        .target(name: "PetrelSystem"),
        // What every listener's NIO glue shares: connection limits, the TLS context and its
        // handshake deadline, running a connection's task on its event loop, log formats.
        .target(
            name: "NIOSupport",
            dependencies: [
                "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "DNSClient",
            dependencies: [
                "PetrelSystem",
                "NIOSupport",
                "DNSCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "MailAuth",
            dependencies: [
                "MailCore",
                "DNSCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "SMTPClient",
            dependencies: [
                "NIOSupport",
                "SMTPCore",
                "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .target(
            name: "Delivery",
            dependencies: [
                "PetrelSystem",
                "Accounts",
                "MailCore",
                "DNSCore",
                "MailStore",
                "MailAuth",
                "SMTPCore",
                "SMTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "SMTPCore",
            dependencies: ["MailCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // IMAP's pure core: framing, parsing, responses, the session (docs/imap.md).
        .target(name: "IMAPCore", dependencies: ["MailCore", .product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "SMTPServer",
            dependencies: [
                "NIOSupport",
                "SMTPCore",
                "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // IMAP's NIO glue: the listener, one task per connection, the commands carried out
        // against the mailboxes (docs/imap.md).
        .target(
            name: "IMAPServer",
            dependencies: [
                "NIOSupport",
                "IMAPCore",
                "MailCore",
                "MailStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        .target(
            name: "MailStore",
            dependencies: [
                "PetrelSystem",
                "CPetrelSystem",
                "MailCore",
                "SMTPCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        .target(name: "CPetrelSystem"),
        .target(
            name: "Accounts",
            dependencies: [
                "PetrelSystem",
                "MailCore",
                "CCrypt",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "PetrelConfiguration",
            dependencies: [
                "PetrelSystem",
                "MailCore",
                "Accounts",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(
            name: "PetrelOperator",
            dependencies: [
                "PetrelSystem",
                "IMAPCore",
                "PetrelConfiguration",
                "DNSClient",
                "MailIntake",
                "MailStore",
                "MailCore",
                "MailAuth",
                "DNSCore",
                "Accounts",
                "SMTPServer",
                "SMTPCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .target(
            name: "MailIntake",
            dependencies: [
                "IMAPCore",
                "PetrelSystem",
                "PetrelConfiguration",
                "SMTPCore",
                "MailCore",
                "MailAuth",
                "MailStore",
                "Accounts",
                "DNSCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "PetrelServer",
            dependencies: [
                "IMAPCore",
                "IMAPServer",
                "PetrelSystem",
                "NIOSupport",
                "MailIntake",
                "PetrelOperator",
                "PetrelConfiguration",
                "SMTPCore",
                "MailCore",
                "SMTPServer",
                "MailStore",
                "Accounts",
                "DNSCore",
                "DNSClient",
                "MailAuth",
                "Delivery",
                "SMTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "petrel",
            dependencies: [
                "PetrelServer",
                "PetrelOperator",
                "PetrelConfiguration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What tests share: the light part (an in-process DNS server, zones, a raw SMTP client, a
        // scripted MX server) for every test target, and the server part (a live server in the
        // test process or as a `petrel` process) for the server tests alone.
        .target(
            name: "PetrelTestSupport",
            dependencies: [
                "MailCore",
                "PetrelSystem",
                "NIOSupport",
                "DNSCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "ServerTestSupport",
            dependencies: [
                "PetrelTestSupport",
                "PetrelServer",
                "PetrelConfiguration",
                "MailStore",
                "SMTPCore",
                "SMTPServer",
                "DNSCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The .dialog transcripts of Tests/Dialogs, read for the session and the server tests.
        .target(name: "SMTPDialogs"),
        .testTarget(name: "MailCoreTests", dependencies: ["MailCore"]),
        .testTarget(
            name: "IMAPCoreTests",
            dependencies: ["IMAPCore", "MailCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "DNSCoreTests", dependencies: ["DNSCore"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "DNSClientTests",
            dependencies: [
                "DNSClient",
                "PetrelTestSupport",
                "DNSCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SMTPCoreTests",
            dependencies: ["SMTPCore", "MailCore", "SMTPDialogs", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "SMTPServerTests",
            dependencies: [
                "SMTPServer",
                "NIOSupport",
                "SMTPCore",
                "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MailAuthTests",
            dependencies: [
                "MailAuth",
                "MailCore",
                "DNSCore",
                "DNSClient",
                "PetrelTestSupport",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "DeliveryTests",
            dependencies: [
                "Delivery", "DNSCore", "MailCore", "MailAuth", "MailStore", "SMTPCore", "SMTPClient", "Accounts",
                "PetrelSystem", "PetrelTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "IMAPServerTests",
            dependencies: [
                .product(name: "CompressNIO", package: "compress-nio"),
                "IMAPServer", "IMAPCore", "MailStore", "SMTPDialogs", "NIOSupport",
                "SMTPServer",  // SelfSignedCertificate, for STARTTLS
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MailStoreTests",
            dependencies: [
                "MailStore", "MailCore", "PetrelTestSupport",
                // An index as an earlier version left it, for the migrations' tests.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MailIntakeTests",
            dependencies: [
                "MailIntake", "MailStore", "SMTPCore", "IMAPCore", "Accounts", "PetrelConfiguration", "MailCore",
                "DNSCore",
                "PetrelTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(name: "AccountsTests", dependencies: ["Accounts", "MailCore"]),
        .testTarget(
            name: "PetrelConfigurationTests",
            dependencies: ["PetrelConfiguration", "Accounts"]
        ),
        // The operator's commands, mostly run as `petrel` processes.
        .testTarget(
            name: "PetrelOperatorTests",
            dependencies: [
                "PetrelSystem",
                "ServerTestSupport",
                "PetrelTestSupport",
                "PetrelOperator",
                "PetrelConfiguration",
                "PetrelServer",
                "MailIntake",
                "MailStore",
                "MailAuth",
                "MailCore",
                "DNSCore",
                "DNSClient",
                "Accounts",
                "petrel",
            ]
        ),
        .testTarget(
            name: "PetrelServerTests",
            dependencies: [
                "PetrelSystem",
                "ServerTestSupport",
                "SMTPDialogs",
                "SMTPCore",
                "MailCore",
                "MailAuth",
                "DNSCore",
                "Delivery",
                "MailIntake",
                "PetrelServer",
                "PetrelConfiguration",
                "PetrelOperator",
                "PetrelTestSupport",
                "SMTPServer",
                "MailStore",
                "Accounts",
                "petrel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer entry points, one per parser a stranger's bytes reach (Scripts/fuzz/fuzz.sh builds and
// runs them; docs/security.md). Declared only when PETREL_FUZZ is set: they link only with
// -sanitize=fuzzer, whose libFuzzer they call.
if Context.environment["PETREL_FUZZ"] != nil {
    package.targets.append(.target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"))
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("Command", ["SMTPCore"]),
        ("Session", ["SMTPCore", "MailCore", .product(name: "NIOCore", package: "swift-nio")]),
        ("DNS", ["DNSCore"]),
        ("SPF", ["MailAuth"]),
        ("DKIM", ["MailAuth", "MailCore"]),
        ("Headers", ["MailAuth", "MailCore"]),
        ("Config", ["PetrelConfiguration"]),
        ("IMAP", ["IMAPCore", .product(name: "NIOCore", package: "swift-nio")]),
    ]
    for (name, dependencies) in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: "fuzz-\(name.lowercased())",
                dependencies: ["CFuzzDriver"] + dependencies,
                path: "Fuzz/\(name)"
            )
        )
    }
}
