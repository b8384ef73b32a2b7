#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
import EchoBenchCore

/// Runs the configuration `configure` makes for a fresh `backend` server's port, then, once the
/// server has accepted every connection the report says was opened (3 s at most), stops the server.
/// Returns the report and the server's final statistics.
func runAgainst(_ backend: BenchedBackend,
                _ configure: (Int) -> BenchmarkConfiguration) throws -> (report: BenchmarkReport, server: ServerStatistics) {
    let server = try backend.start()
    let report: BenchmarkReport
    do {
        report = try BenchmarkRun.run(configure(server.port))
    } catch {
        _ = try? server.shutdown()
        throw error
    }
    let opened = report.connectionsOpened + UInt64(report.idleEstablished)
    let deadline = ContinuousClock.now + .seconds(3)
    while server.statistics.snapshot()[.connectionsAccepted] < opened && ContinuousClock.now < deadline {
        usleep(5_000)
    }
    return (report, try server.shutdown())
}

/// Every mode against the real servers: no errors, and counts that agree with the server's.
/// Nested in the serialized ``EchoBenchTests``, so no two benchmarks compete for the two CPUs.
extension EchoBenchTests {
    @Suite("echo-bench modes")
    struct ModeTests {
        @Test("--pipeline keeps several requests in flight", arguments: [BenchedBackend.uring, .epoll])
        func pipeline(_ backend: BenchedBackend) throws {
            let (report, server) = try runAgainst(backend) { port in
                var configuration = quickRun(port: port, connections: 5, duration: 0.5, warmup: 0.1)
                configuration.mode = .pipeline(depth: 8)
                return configuration
            }
            #expect(report.configuration.mode == .pipeline(depth: 8))
            #expect(report.requests > 0, "\(describe(report))")
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
            #expect(report.latency.totalCount == report.requests)
            // Everything counted was echoed by the server (which also served warm-up and the tail).
            #expect(server[.bytesSent] >= report.bytes)
            #expect(server[.connectionsAccepted] == 5)
        }

        @Test("--pipeline with messages that span reads and sends (not a multiple of 8, over 64 KiB together)")
        func pipelineOddLength() throws {
            let (report, _) = try runAgainst(.uring) { port in
                var configuration = quickRun(port: port, connections: 3, length: 9_999, duration: 0.5)
                configuration.mode = .pipeline(depth: 16)
                return configuration
            }
            #expect(report.requests > 0, "\(describe(report))")
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
        }

        @Test("--rate offers exactly the uniform schedule, and a server with room to spare sustains it",
              arguments: [BenchedBackend.uring, .epoll])
        func rateUniform(_ backend: BenchedBackend) throws {
            let (report, _) = try runAgainst(backend) { port in
                var configuration = quickRun(port: port, connections: 10, duration: 1, warmup: 0.2, threads: 2)
                configuration.mode = .rate(.init(perSecond: 2000))
                return configuration
            }
            #expect(report.configuration.mode == .rate(.init(perSecond: 2000, arrival: .uniform, queueLimit: 1000, inFlight: 1)))
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
            // Due times are start + k / rate per loop, the two loops interleaved: 2000 in 1 s exactly.
            #expect(report.scheduledInWindow == 2000)
            #expect(report.requests == 2000, "\(describe(report))")
            #expect(report.sustained == true)
            #expect(report.offeredRate == 2000 && report.achievedRate == 2000)
            #expect(report.latency.totalCount == 2000)
        }

        @Test("--rate with Poisson arrivals offers about the target")
        func ratePoisson() throws {
            let (report, _) = try runAgainst(.uring) { port in
                var configuration = quickRun(port: port, connections: 10, duration: 1, warmup: 0.1)
                configuration.mode = .rate(.init(perSecond: 3000, arrival: .poisson))
                return configuration
            }
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
            // 3000 expected; the standard deviation of a Poisson count is about 55.
            let offered = try #require(report.offeredRate)
            #expect(offered > 2600 && offered < 3400, "offered \(offered)")
            #expect(report.requests == report.scheduledInWindow, "\(describe(report))")
        }

        @Test("churn: connection counts agree with the server's accepted connections",
              arguments: [(BenchedBackend.uring, 1), (.epoll, 1), (.uring, 5)])
        func churn(_ backend: BenchedBackend, _ perConnection: Int) throws {
            let (report, server) = try runAgainst(backend) { port in
                var configuration = quickRun(port: port, connections: 8, duration: 0.5, warmup: 0.1)
                configuration.mode = .churn(requestsPerConnection: perConnection)
                return configuration
            }
            #expect(report.configuration.mode == .churn(requestsPerConnection: perConnection))
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
            #expect(report.connectionsCompleted > 0)
            #expect(report.connectionsOpened > report.connectionsCompleted)
            #expect(server[.connectionsAccepted] == report.connectionsOpened,
                    "server accepted \(server[.connectionsAccepted]), bench opened \(report.connectionsOpened)")
            if perConnection == 1 {
                // One echo per connection: each counted echo closed a counted connection.
                #expect(report.requests == report.connectionsCompleted, "\(describe(report))")
            } else {
                let expected = Int(report.connectionsCompleted) * perConnection
                #expect(abs(Int(report.requests) - expected) <= 8 * perConnection, "\(describe(report))")
            }
            #expect(report.connectLatency.totalCount > 0 && report.firstEchoLatency.totalCount > 0)
            let connect = BenchmarkReport.LatencySummary(report.connectLatency)
            let firstEcho = BenchmarkReport.LatencySummary(report.firstEchoLatency)
            #expect(connect.p50 > 0 && firstEcho.p50 >= connect.p50)
            #expect((report.connectionsPerSecond ?? 0) > 0)
        }

        @Test("--stream moves bytes continuously, every one checked", arguments: [BenchedBackend.uring, .epoll])
        func stream(_ backend: BenchedBackend) throws {
            let (report, server) = try runAgainst(backend) { port in
                var configuration = quickRun(port: port, connections: 4, length: 1000, duration: 0.5, warmup: 0.1)
                configuration.mode = .stream(window: 100_000)
                return configuration
            }
            #expect(report.configuration.mode == .stream(window: 100_000))
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
            #expect(report.bytes > 1_000_000, "\(describe(report))")
            #expect(report.requests == report.bytes / 1000)
            #expect(server[.bytesSent] >= report.bytes)
            #expect(report.latency.totalCount > 0)
            #expect(report.mebibytesPerSecond > 0)
        }

        @Test("--idle holds connections across helper processes (and source addresses)", arguments: [50, nil])
        func idle(perSource: Int?) throws {
            let helper = try #require(EchoBenchBinary.path, "the echo-bench executable was not built")
            let (report, server) = try runAgainst(.uring) { port in
                var configuration = quickRun(port: port, connections: 5, duration: 0.5)
                configuration.idle = 300
                configuration.idlePerProcess = 100
                configuration.idlePerSource = perSource
                configuration.helperExecutable = helper
                return configuration
            }
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
            #expect(report.requests > 0)
            #expect(report.idleEstablished == 300)
            #expect(report.idleProcesses == 2)
            #expect(report.idleSources == (perSource == nil ? 1 : 6))
            #expect(server[.connectionsAccepted] == 305)
            // Idle connections sent nothing: the server read only the measured connections' bytes.
            #expect(server[.bytesReceived] >= report.bytes)
        }

        @Test("--idle in this process alone, with another mode")
        func idleWithRate() throws {
            let (report, server) = try runAgainst(.epoll) { port in
                var configuration = quickRun(port: port, connections: 4, duration: 0.5)
                configuration.idle = 200
                configuration.mode = .rate(.init(perSecond: 1000))
                return configuration
            }
            #expect(report.errors == ErrorCounts(), "\(describe(report))")
            #expect(report.idleEstablished == 200 && report.idleProcesses == 0 && report.idleSources == 1)
            #expect(report.sustained == true)
            #expect(server[.connectionsAccepted] == 204)
        }
    }
}

/// Where the built `echo-bench` executable is (the helper processes of `--idle` run it): next to
/// the test bundle, as `swift test` builds every product, or under the package's `.build/debug`.
enum EchoBenchBinary {
    static let path: String? = {
        var candidates: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if count > 0 {
            var directory = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for _ in 0..<3 {
                directory = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
                candidates.append(directory + "/echo-bench")
            }
        }
        // #filePath is …/Tests/EchoBenchTests/ModeTests.swift.
        let root = "\(#filePath)".split(separator: "/").dropLast(3).joined(separator: "/")
        candidates.append("/" + root + "/.build/debug/echo-bench")
        return candidates.first { access($0, X_OK) == 0 }
    }()
}
