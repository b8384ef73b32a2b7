#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

extension EchoSuite {
    /// `benchmarks/soak` for 30 seconds against the `echo` executable: a mixed workload (message sizes
    /// 1 B to 64 KiB, random chunking, pipelining, churn with FIN and RST closes, slow readers), every
    /// byte verified, the server's RSS and descriptor count checked for upward trends, exit 0 on SIGTERM.
    /// Serialized: each run keeps both cores busy on its own.
    @Suite("Soak", .serialized, .timeLimit(.minutes(2)))
    struct Soak {
        /// …/benchmarks/soak; #filePath is …/Tests/EchoServerTests/SoakTests.swift.
        static let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("benchmarks/soak").path

        @Test("30-second soak: every byte verified, no RSS or descriptor growth", arguments: BackendUnderTest.soak)
        func soak(_ backend: BackendUnderTest) throws {
            let echo = try #require(EchoBinary.path, "the echo executable was not built")
            try #require(access(Self.script, R_OK) == 0, "no soak script at \(Self.script)")
            let variant = try #require(backend.soakName, "\(backend) has no soak variant")
            let child = try ChildProcess(executable: "/usr/bin/env", arguments: [
                "python3", Self.script, "--seconds", "30", "--backend", variant, "--echo", echo,
            ])
            guard let status = child.waitForExit(timeout: 105) else {
                child.send(signal: SIGTERM)  // the script stops its server on SIGTERM
                _ = child.waitForExit(timeout: 10)
                child.killAndReap()
                Issue.record("soak did not finish within 105 s; stdout: \(child.standardOutput.suffix(2000))")
                return
            }
            let stdout = child.standardOutput
            let stderr = child.standardError
            #expect(status == .exited(0), "soak: \(status); stdout: \(stdout.suffix(3000)); stderr: \(stderr.suffix(2000))")
            #expect(stdout.contains("summary:") && stdout.contains("bytes verified")
                    && stdout.contains("RSS KiB") && stdout.contains("fds"), "no summary: \(stdout.suffix(3000))")
            #expect(stdout.contains("PASS"), "stdout: \(stdout.suffix(3000))")
        }
    }
}
