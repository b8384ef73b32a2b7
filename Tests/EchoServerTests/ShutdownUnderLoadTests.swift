#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Backend
@testable import EchoTestSupport

extension EchoSuite {
    /// SIGTERM or SIGINT while 2000 clients are busy: the process exits 0 with its statistics
    /// printed, and the shutdown the server reports (signal to every loop joined) is prompt. The load
    /// is `echo-bench`, built next to `echo`.
    @Suite("Shutdown under load", .timeLimit(.minutes(1)))
    struct ShutdownUnderLoad {
        /// Seconds the reported shutdown may take: it takes milliseconds here. Tighter than a hang's
        /// bound (the exit itself must come within 5 s), so a miss is measured once more on a fresh
        /// server: a host hiccup can stall any process for a second, a stop slow by design misses both.
        static let bound = 1.0
        static let connections = 2000

        static var benchPath: String? {
            guard let echo = EchoBinary.path else { return nil }
            let path = URL(fileURLWithPath: echo).deletingLastPathComponent().appendingPathComponent("echo-bench").path
            return access(path, X_OK) == 0 ? path : nil
        }

        @Test("a stop signal with 2000 busy clients: exit 0, a prompt shutdown, statistics printed",
              arguments: BackendUnderTest.eventDriven, [SIGTERM, SIGINT])
        func stopsPromptlyUnderLoad(_ backend: BackendUnderTest, signal: Int32) throws {
            try measureTwice(within: Self.bound, "the shutdown under load (server's report)") {
                try stopUnderLoad(backend, signal: signal)
            }
        }

        /// Starts a server and 2000 busy `echo-bench` clients, waits until the server holds every
        /// connection and serves them, sends `signal`; checks the exit and the report, and returns
        /// the shutdown time the server reports.
        private func stopUnderLoad(_ backend: BackendUnderTest, signal: Int32) throws -> Double {
            let bench = try #require(Self.benchPath, "the echo-bench executable was not built")
            let server = try ServerProcess(arguments: backend.cliArguments, statistics: true)
            let load = try ChildProcess(executable: bench, arguments:
                ["--port", String(server.port), "--connections", String(Self.connections), "--length", "512",
                 "--duration", "20", "--warmup", "0", "--connect-timeout", "10"])
            defer { load.killAndReap() }
            // Busy: every connection up, and requests still being served after that.
            let held = try server.waitForOpenConnections(atLeast: Self.connections, timeout: 15)
            try server.waitUntil("serving the load", timeout: 5) { $0.integer("requests") > held.integer("requests") }
            #expect(load.isRunning, "echo-bench ended early: \(load.standardError)")

            let status = server.stop(signal: signal, timeout: 5)
            let stderr = server.child.standardError
            #expect(status == .exited(0), "after the signal: \(status.map(\.description) ?? "still running after 5 s"); stderr: \(stderr)")
            #expect(!looksLikeCrash(stderr), "stderr: \(stderr)")
            let report = try #require(FinalReport(stderr: stderr), "no statistics on stderr: \(stderr)")
            return try #require(report.shutdownSeconds, "the report should say how long the shutdown took: \(report.headline)")
        }
    }
}
