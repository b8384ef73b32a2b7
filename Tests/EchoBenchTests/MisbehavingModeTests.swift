import Testing
import EchoBenchCore

/// Every mode against servers that misbehave: corruption is caught whatever the traffic's shape,
/// and the open loop sees the stalls a closed loop hides. Nested in the serialized
/// ``EchoBenchTests``, so no two benchmarks compete for the two CPUs.
extension EchoBenchTests {
    @Suite("echo-bench modes against broken servers")
    struct MisbehavingModeTests {
        /// The modes with a corrupting server's expected outcome: a server that flips a byte of every
        /// 10th read ends every connection with a mismatch.
        enum CorruptedMode: String, CaseIterable, CustomTestStringConvertible, Sendable {
            case pipeline, rate, churn, stream
            var testDescription: String { rawValue }

            func apply(to configuration: inout BenchmarkConfiguration) {
                switch self {
                case .pipeline: configuration.mode = .pipeline(depth: 4)
                case .rate: configuration.mode = .rate(.init(perSecond: 2000))
                // More echoes per connection than reads before the flip, so every connection meets one.
                case .churn: configuration.mode = .churn(requestsPerConnection: 20)
                case .stream: configuration.mode = .stream(window: BenchmarkMode.defaultStreamWindow)
                }
            }
        }

        @Test("a byte flipped every 10th read is caught", arguments: CorruptedMode.allCases)
        func flippedByte(_ mode: CorruptedMode) throws {
            let server = try MisbehavingServer(.flipByte(every: 10))
            defer { server.stop() }
            let connections = 10
            var configuration = quickRun(port: server.port, connections: connections, duration: 0.5)
            mode.apply(to: &configuration)
            let report = try BenchmarkRun.run(configuration)
            #expect(report.errors.mismatch == UInt64(connections), "\(describe(report))")
            #expect(report.errors.reset == 0 && report.errors.eof == 0 && report.errors.connect == 0, "\(describe(report))")
            #expect(report.hasErrors)
        }

        @Test("churn: a reply carrying another connection's request is caught (one request per connection)")
        func crossTalk() throws {
            let server = try MisbehavingServer(.crossTalk)
            defer { server.stop() }
            var configuration = quickRun(port: server.port, connections: 6, duration: 0.5)
            configuration.mode = .churn(requestsPerConnection: 1)
            let report = try BenchmarkRun.run(configuration)
            #expect(report.errors.mismatch == 6, "\(describe(report))")
            // Only the server's very first reply is the request's own.
            #expect(report.requests <= 1, "\(describe(report))")
        }

        @Test("idle: bytes the server sends unasked are caught on idle connections too")
        func greeting() throws {
            let server = try MisbehavingServer(.greet(greeting: Array("hello\n".utf8)))
            defer { server.stop() }
            var configuration = quickRun(port: server.port, connections: 3, duration: 0.3)
            configuration.idle = 20
            let report = try BenchmarkRun.run(configuration)
            #expect(report.idleEstablished == 20)
            #expect(report.errors.mismatch == 23, "\(describe(report))")
        }

        @Test("--rate: a server that stops for 200 ms every second shows it in p90 (no coordinated omission)")
        func openLoopSeesStalls() throws {
            let server = try MisbehavingServer(.pauseEvery(period: 1, pause: 0.2))
            defer { server.stop() }
            var configuration = quickRun(port: server.port, connections: 10, duration: 2, warmup: 0)
            configuration.mode = .rate(.init(perSecond: 1000))
            let report = try BenchmarkRun.run(configuration)
            #expect(report.errors.failures == 0 && report.errors.dropped == 0, "\(describe(report))")
            // The rate is sustained: every request due in the window was answered…
            #expect(report.sustained == true, "\(describe(report))")
            // …but those due in the first 150 ms of each pause (15% of them) waited 50 ms or more.
            let latency = report.latencySummary
            #expect(latency.p90 >= 50_000, "p90 \(latency.p90) µs")
            #expect(latency.max >= 150_000, "max \(latency.max) µs")
        }
    }
}
