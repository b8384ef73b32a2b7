#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import EchoTestSupport

extension EchoSuite {
    /// `benchmarks/soak` for 30 seconds against the `echo` executable: a mixed workload (message sizes
    /// 1 B to 64 KiB, random chunking, pipelining, churn with FIN and RST closes, slow readers), every
    /// byte verified, the server's RSS and descriptor count checked for upward trends, exit 0 on SIGTERM.
    ///
    /// The soaks of the backends run at once, each its own script, server and port: together they keep
    /// both cores busy for 30 s, where one after the other took 90 s with the same checks.
    @Suite("Soak", .timeLimit(.minutes(2)))
    struct Soak {
        /// …/benchmarks/soak; #filePath is …/Tests/EchoServerTests/SoakTests.swift.
        static let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("benchmarks/soak").path

        @Test("30-second soaks, one per soak backend at once: every byte verified, no RSS or descriptor growth")
        func soak() throws {
            let echo = try #require(EchoBinary.path, "the echo executable was not built")
            try #require(access(Self.script, R_OK) == 0, "no soak script at \(Self.script)")
            let backends = BackendUnderTest.soak
            try #require(!backends.isEmpty, "no backend has a soak variant")
            var soaks: [(backend: BackendUnderTest, child: ChildProcess)] = []
            defer { soaks.forEach { $0.child.killAndReap() } }
            for backend in backends {
                let variant = try #require(backend.soakName, "\(backend) has no soak variant")
                soaks.append((backend, try ChildProcess(executable: "/usr/bin/env", arguments: [
                    "python3", Self.script, "--seconds", "30", "--backend", variant, "--echo", echo,
                ])))
            }
            // 30 s of load, the drain, the server's stop: 105 s at most, for all of them together.
            let deadline = monotonicNow() + 105
            for (backend, child) in soaks {
                guard let status = child.waitForExit(timeout: max(1, deadline - monotonicNow())) else {
                    child.send(signal: SIGTERM)  // the script stops its server on SIGTERM
                    _ = child.waitForExit(timeout: 10)
                    child.killAndReap()
                    Issue.record("\(backend): soak did not finish within 105 s; stdout: \(child.standardOutput.suffix(2000))")
                    continue
                }
                let stdout = child.standardOutput
                let stderr = child.standardError
                #expect(status == .exited(0), "\(backend) soak: \(status); stdout: \(stdout.suffix(3000)); stderr: \(stderr.suffix(2000))")
                #expect(stdout.contains("summary:") && stdout.contains("bytes verified")
                        && stdout.contains("RSS KiB") && stdout.contains("fds"), "\(backend): no summary: \(stdout.suffix(3000))")
                #expect(stdout.contains("PASS"), "\(backend): stdout: \(stdout.suffix(3000))")
            }
        }
    }
}
