// swift-tools-version:6.0
import PackageDescription

// The micro-benchmarks, a package of their own (as swift-nio keeps its benchmarks apart), so that
// Petrel's package resolves no benchmark-only dependency. `bench/micro` builds and runs them.
let package = Package(
    name: "petrel-microbench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "petrel", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
    ],
    targets: [
        .executableTarget(
            name: "petrel-microbench",
            dependencies: [
                .product(name: "PetrelCores", package: "petrel"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
