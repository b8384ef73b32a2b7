#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Backend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// 10,000 connections at once. RLIMIT_NOFILE's hard limit (20,000 here) cannot hold 10,000 client
    /// and 10,000 server descriptors in one process, so the server is the `echo` executable in a child
    /// process and this process holds the clients.
    @Suite("Scale", .timeLimit(.minutes(2)))
    struct Scale {
        @Test("10,000 concurrent connections each echo once (echo child process)", arguments: BackendUnderTest.eventDriven)
        func tenThousandConnections(_ backend: BackendUnderTest) throws {
            let count = 10_000
            let limit = FileDescriptorLimit.raiseToHardLimit()
            try #require(limit >= count + openDescriptorCount() + 64, "RLIMIT_NOFILE \(limit) is too low for \(count) clients")
            let size = { (index: Int) in 64 + index % 64 }
            let expectedBytes = (0..<count).reduce(0) { $0 + size($1) }
            // Not --quiet: the statistics printed at stop are part of what is checked. --stats-json
            // gives the exact counters.
            let server = try ServerProcess(arguments: backend.cliArguments, statistics: true)
            let outcome = ManyConnections.run(port: server.port, count: count, window: 256, timeout: 75) { index in
                ManyConnections.taggedPayload(index: index, size: size(index), seed: 10_000)
            }
            #expect(outcome.echoed == count, "\(outcome)")
            #expect(outcome.peakOpen == count, "not all connections were open at once: \(outcome)")
            #expect(server.child.isRunning, "echo died: \(server.child.standardError)")

            let status = server.stop(signal: SIGTERM, timeout: 5)
            let stderr = server.child.standardError
            #expect(status == .exited(0), "after SIGTERM: \(status.map(\.description) ?? "still running after 5 s"); stderr: \(stderr)")
            #expect(looksLikeStatistics(stderr), "no statistics on stderr: \(stderr)")
            #expect(!looksLikeCrash(stderr), "stderr: \(stderr)")

            // The counters at stop: every connection (and the start-up probe) accepted and closed,
            // every byte in and out once.
            let stats = try server.writtenStatistics()
            let number = { (key: String) in stats.integer(key) }
            #expect(stats["reason"] as? String == "stop", "\(stats)")
            #expect(number("connections_accepted") == count + 1, "10,000 clients and the start-up probe: \(stats)")
            #expect(number("connections_closed") == number("connections_accepted"), "\(stats)")
            #expect(number("bytes_received") == expectedBytes && number("bytes_sent") == expectedBytes,
                    "expected \(expectedBytes) bytes each way: \(stats)")
            #expect(number("accept_failures") == 0, "\(stats)")
        }
    }
}
