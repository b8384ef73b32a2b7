#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Backend

extension EchoSuite {
    /// SIGTERM or SIGINT while thousands of clients are busy: the process ends within a second, with
    /// exit status 0 and its statistics printed. The load is `echo-bench`, built next to `echo`.
    @Suite("Shutdown under load", .timeLimit(.minutes(1)))
    struct ShutdownUnderLoad {
        static var benchPath: String? {
            guard let echo = EchoBinary.path else { return nil }
            let path = URL(fileURLWithPath: echo).deletingLastPathComponent().appendingPathComponent("echo-bench").path
            return access(path, X_OK) == 0 ? path : nil
        }

        @Test("a stop signal with 2000 busy clients: exit 0 within 1 s, statistics printed",
              arguments: [BackendUnderTest.uring, .uringLegacy, .epoll], [SIGTERM, SIGINT])
        func stopsPromptlyUnderLoad(_ backend: BackendUnderTest, signal: Int32) throws {
            let bench = try #require(Self.benchPath, "the echo-bench executable was not built")
            let server = try ServerProcess(arguments: backend.cliArguments)
            let load = try ChildProcess(executable: bench, arguments:
                ["--port", String(server.port), "--connections", "2000", "--length", "512",
                 "--duration", "20", "--warmup", "0", "--connect-timeout", "10"])
            defer { load.killAndReap() }
            // Busy: every connection up and echoing (the bench's requests are the server's).
            sleep(seconds: 2)
            #expect(load.isRunning, "echo-bench ended early: \(load.standardError)")

            let sent = monotonicNow()
            let status = server.stop(signal: signal, timeout: 5)
            let took = monotonicNow() - sent
            let stderr = server.child.standardError
            #expect(status == .exited(0), "after the signal: \(status.map(\.description) ?? "still running after 5 s"); stderr: \(stderr)")
            #expect(took < 1.0, "took \(took) s to exit")
            #expect(looksLikeStatistics(stderr), "no statistics on stderr: \(stderr)")
            #expect(!looksLikeCrash(stderr), "stderr: \(stderr)")
        }
    }
}
