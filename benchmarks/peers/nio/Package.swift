// swift-tools-version:6.0
// A peer for the benchmarks: SwiftNIO's echo server, one event loop by default.
// Its own package so the main package does not depend on SwiftNIO.
// Build: cd benchmarks/peers/nio && swift build -c release
import PackageDescription

let package = Package(
    name: "nio-echo",
    products: [
        .executable(name: "nio-echo", targets: ["nio-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "nio-echo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)
