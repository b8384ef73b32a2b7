// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "uring-echo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "echo", targets: ["echo"]),
        .executable(name: "echo-bench", targets: ["EchoBench"]),
        .library(name: "EchoSupport", targets: ["EchoSupport"]),
        .library(name: "Backend", targets: ["Backend"]),
        .library(name: "URingBackend", targets: ["URingBackend"]),
        .library(name: "EpollBackend", targets: ["EpollBackend"]),
        .library(name: "BlockingBackend", targets: ["BlockingBackend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        /// liburing, through the system's pkg-config (`apt-get install liburing-dev`).
        .systemLibrary(
            name: "CLibUring",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        /// Linux interfaces Glibc does not export to Swift (epoll, eventfd, accept4, thread names).
        .target(name: "CLinux"),
        /// What `echo` and `echo-bench` share: the system-call helper and its errors, threads,
        /// the monotonic clock, descriptor limits, and text for the console and JSON.
        .target(name: "EchoSupport", dependencies: ["CLinux"]),
        /// How both commands end on an error: one line, and the exit status for its kind.
        .target(
            name: "CommandLineSupport",
            dependencies: ["EchoSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        /// The protocol every backend implements, plus the server core they share: the listening
        /// socket, limits, statistics and the stop signal.
        .target(name: "Backend", dependencies: ["EchoSupport", "CLinux"]),
        .target(name: "URingBackend", dependencies: ["Backend", "EchoSupport", "CLibUring", "CLinux"]),
        .target(name: "EpollBackend", dependencies: ["Backend", "EchoSupport", "CLinux"]),
        .target(name: "BlockingBackend", dependencies: ["Backend", "EchoSupport", "CLinux"]),
        /// The `echo` command line: its flags, what they build, the named configurations, the
        /// reports. A library so tests can parse and render configurations in-process.
        .target(
            name: "EchoCLI",
            dependencies: [
                "Backend", "EchoSupport", "URingBackend", "EpollBackend", "BlockingBackend",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        /// `echo`: the server.
        .executableTarget(
            name: "echo",
            dependencies: [
                "EchoCLI", "EchoSupport", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        /// The load generator's engine, report and command line, as a library so tests can run it
        /// in-process against servers they start.
        .target(
            name: "EchoBenchCore",
            dependencies: [
                "EchoSupport", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        /// `echo-bench`: the closed-loop load generator.
        .executableTarget(
            name: "EchoBench",
            dependencies: [
                "EchoBenchCore", "EchoSupport", "CommandLineSupport", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "EchoBenchTests",
            dependencies: ["EchoBenchCore", "EchoSupport", "Backend", "CLinux", "URingBackend", "EpollBackend", "BlockingBackend"]
        ),
        /// What the server tests share: clients, scenarios, the configurations under test, the
        /// `echo` child process, and `EchoSuite`, the serialized suite they all run under.
        .target(
            name: "EchoTestSupport",
            dependencies: ["EchoSupport", "Backend", "URingBackend", "CLibUring", "EpollBackend", "BlockingBackend", "EchoCLI"],
            path: "Tests/EchoTestSupport"
        ),
        /// Each module's own tests, beside it: state machines, arithmetic, and what one module does
        /// against a real kernel.
        .testTarget(name: "BackendTests", dependencies: ["Backend", "EchoSupport", "EchoTestSupport"]),
        .testTarget(
            name: "URingBackendTests",
            dependencies: ["URingBackend", "Backend", "EchoSupport", "CLibUring", "EchoCLI", "EchoTestSupport"]
        ),
        .testTarget(name: "EchoCLITests", dependencies: ["EchoCLI", "Backend", "EchoSupport", "URingBackend",
                                                         "EpollBackend", "BlockingBackend", "EchoTestSupport"]),
        /// The end-to-end suites, run over every backend and mode: conformance, limits, hostile
        /// clients, scale, soak, splice.
        .testTarget(
            name: "EchoServerTests",
            dependencies: ["EchoSupport", "Backend", "URingBackend", "CLibUring", "EpollBackend", "BlockingBackend",
                           "EchoCLI", "EchoTestSupport"]
        ),
    ]
)
