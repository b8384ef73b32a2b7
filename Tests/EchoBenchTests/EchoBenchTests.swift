#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import ArgumentParser
import Backend
import BlockingBackend
import EchoBenchCore
import EpollBackend
import URingBackend

/// The servers `echo-bench` is run against in-process.
enum BenchedBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case uring
    case epoll
    case blockingThreaded

    var testDescription: String { rawValue }

    func start() throws -> EchoServer {
        switch self {
        case .uring:
            // The default as `echo --backend uring` runs it here: negotiated with the kernel.
            let options = URingBackend.Options.negotiated(on: .running).options
            return try EchoServer.start(URingBackend(options: options), host: "127.0.0.1", port: 0)
        case .epoll:
            return try EchoServer.start(EpollBackend(), host: "127.0.0.1", port: 0)
        case .blockingThreaded:
            var options = BlockingBackend.Options()
            options.mode = .threaded
            return try EchoServer.start(BlockingBackend(options: options), host: "127.0.0.1", port: 0)
        }
    }
}

/// A short run's configuration against `port`.
///
/// A request counts as stalled after 3 s, not 1: debug builds on a shared machine take up to 0.9 s
/// for a 3 MiB round trip through the epoll server (base and new echo-bench alike). The bound
/// catches hangs, not slowness. (`--rate` waits as long for its requests' echoes.)
func quickRun(port: Int, connections: Int = 20, length: Int = 128, duration: Double = 1,
              warmup: Double = 0, threads: Int = 1) -> BenchmarkConfiguration {
    var configuration = BenchmarkConfiguration(host: "127.0.0.1", port: port, connections: connections, length: length,
                                               duration: duration, warmup: warmup, threads: threads)
    configuration.connectTimeout = 5
    configuration.stallThreshold = 3
    return configuration
}

func describe(_ report: BenchmarkReport) -> String {
    "requests \(report.requests), errors \(report.errors), established \(report.connectionsEstablished)"
}

@Suite("echo-bench", .serialized, .timeLimit(.minutes(1)))
struct EchoBenchTests {
    // MARK: Against the real backends

    @Test("counts requests against each backend, consistent with the server's count", arguments: BenchedBackend.allCases)
    func againstBackend(_ backend: BenchedBackend) throws {
        let server = try backend.start()
        let report: BenchmarkReport
        do {
            report = try BenchmarkRun.run(quickRun(port: server.port))
        } catch {
            _ = try? server.shutdown()
            throw error
        }
        let statistics = try server.shutdown()
        #expect(report.requests > 0, "\(describe(report))")
        #expect(report.errors == ErrorCounts(), "\(describe(report))")
        #expect(!report.hasErrors)
        #expect(report.connectionsEstablished == 20)
        #expect(statistics[.connectionsAccepted] == 20)
        // The server counts reads (a request split across reads counts twice) and also serves the
        // requests still in flight when the window closes, so it can only count more.
        #expect(report.requests <= statistics[.requests], "bench \(report.requests), server \(statistics[.requests])")
        // With no warm-up, everything the server echoed but the bench did not count is what was in
        // flight at the end: about one request per connection (plus split reads).
        #expect(statistics[.requests] - report.requests <= max(report.requests / 10, 1000),
                "bench \(report.requests), server \(statistics[.requests])")
        #expect(report.bytes == report.requests * 128)
        #expect(report.latency.totalCount == report.requests)
        let latency = report.latencySummary
        #expect(latency.p50 > 0 && latency.p50 <= latency.p99 && latency.p99 <= latency.max)
    }

    @Test("two loops on two threads share the connections")
    func twoThreads() throws {
        let server = try BenchedBackend.epoll.start()
        defer { _ = try? server.shutdown() }
        let report = try BenchmarkRun.run(quickRun(port: server.port, connections: 21, duration: 0.7, warmup: 0.2, threads: 2))
        #expect(report.requests > 0, "\(describe(report))")
        #expect(report.errors == ErrorCounts(), "\(describe(report))")
        #expect(report.connectionsEstablished == 21)
        #expect(report.configuration.threads == 2)
    }

    @Test("large messages: partial sends and reads, EPOLLOUT", arguments: [BenchedBackend.epoll, .uring])
    func largeMessages(_ backend: BenchedBackend) throws {
        let server = try backend.start()
        defer { _ = try? server.shutdown() }
        let length = 3 << 20 + 5  // bigger than the socket buffers, not a multiple of 8
        let report = try BenchmarkRun.run(quickRun(port: server.port, connections: 4, length: length, duration: 1))
        #expect(report.requests > 0, "\(describe(report))")
        #expect(report.errors == ErrorCounts(), "\(describe(report))")
    }

    @Test("an echo that arrives in 3-byte pieces is reassembled and verified")
    func dribbledEcho() throws {
        let server = try MisbehavingServer(.dribble(piece: 3))
        defer { server.stop() }
        let report = try BenchmarkRun.run(quickRun(port: server.port, connections: 5, length: 1001, duration: 0.5))
        #expect(report.requests > 0, "\(describe(report))")
        #expect(report.errors == ErrorCounts(), "\(describe(report))")
    }

    // MARK: Broken servers

    @Test("a server that flips a byte every 10th message is reported as mismatches, not successes")
    func flippedByte() throws {
        let server = try MisbehavingServer(.flipByte(every: 10))
        defer { server.stop() }
        let connections = 20
        let report = try BenchmarkRun.run(quickRun(port: server.port, connections: connections, duration: 1))
        #expect(report.errors.mismatch == UInt64(connections), "\(describe(report))")
        #expect(report.errors.reset == 0 && report.errors.eof == 0 && report.errors.connect == 0)
        #expect(report.hasErrors)
        // Each connection completes at most the 9 honest round trips before its flipped one.
        #expect(report.requests <= UInt64(connections * 9), "\(describe(report))")
    }

    @Test("a server that echoes stale bytes (its first message, again and again) is caught")
    func staleEcho() throws {
        let server = try MisbehavingServer(.replayFirst)
        defer { server.stop() }
        let connections = 10
        let report = try BenchmarkRun.run(quickRun(port: server.port, connections: connections, duration: 0.5))
        #expect(report.errors.mismatch == UInt64(connections), "\(describe(report))")
        #expect(report.requests <= UInt64(connections), "only the first round trip of each is right: \(describe(report))")
    }

    @Test("a server that closes the connection is reported as eof, and the connection is not reopened")
    func serverCloses() throws {
        let server = try MisbehavingServer(.closeAfter(count: 3))
        defer { server.stop() }
        let connections = 8
        let report = try BenchmarkRun.run(quickRun(port: server.port, connections: connections, duration: 0.5))
        #expect(report.errors.eof == UInt64(connections), "\(describe(report))")
        #expect(report.errors.mismatch == 0)
        #expect(report.hasErrors)
        #expect(report.requests <= UInt64(connections * 3), "\(describe(report))")
    }

    @Test("a server that never answers leaves every connection stalled, which is not a failure")
    func stalled() throws {
        let server = try MisbehavingServer(.blackHole)
        defer { server.stop() }
        var configuration = quickRun(port: server.port, connections: 6, duration: 1, warmup: 0)
        configuration.stallThreshold = 0.5
        let report = try BenchmarkRun.run(configuration)
        #expect(report.requests == 0)
        #expect(report.errors.stalled == 6, "\(describe(report))")
        #expect(report.errors.failures == 0)
        #expect(!report.hasErrors)
    }

    @Test("nothing listening: one clear error")
    func connectionRefused() throws {
        // A port that was just free: bind one, read it back, close it.
        let probe = try ListeningSocket.bind(host: "127.0.0.1", port: 0, backlog: 1)
        let port = probe.port
        probe.close()
        #expect(throws: BenchmarkError.cannotConnect(endpoint: "127.0.0.1:\(port)", errno: ECONNREFUSED)) {
            _ = try BenchmarkRun.run(quickRun(port: port, connections: 50, duration: 1))
        }
        let error = BenchmarkError.cannotConnect(endpoint: "127.0.0.1:6666", errno: ECONNREFUSED)
        #expect(error.description == "cannot connect to 127.0.0.1:6666: Connection refused")
    }

    // MARK: Output

    @Test("--json prints one object with the keys the runner reads")
    func jsonReport() throws {
        let server = try BenchedBackend.epoll.start()
        defer { _ = try? server.shutdown() }
        let report = try BenchmarkRun.run(quickRun(port: server.port, connections: 3, duration: 0.3, warmup: 0.1))
        let text = report.json
        #expect(!text.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["host", "port", "connections", "length", "threads", "warmup_s", "duration_s",
                                     "elapsed_s", "requests", "requests_per_second", "mib_per_second", "latency_us",
                                     "errors", "connections_established", "cpu", "window",
                                     // The modes' keys, null where the mode does not define them.
                                     "mode", "pipeline", "target_rate", "arrival", "queue_limit", "offered_rate",
                                     "achieved_rate", "sustained", "requests_per_connection", "connections_opened",
                                     "connections_per_second", "connect_latency_us", "first_echo_latency_us",
                                     "stream_window", "idle", "idle_established", "idle_processes", "idle_sources"])
        #expect(object["mode"] as? String == "pingpong")
        #expect(object["target_rate"] is NSNull && object["sustained"] is NSNull && object["connect_latency_us"] is NSNull)
        #expect((object["connections_opened"] as? NSNumber)?.intValue == 3)
        #expect(object["host"] as? String == "127.0.0.1")
        #expect((object["port"] as? NSNumber)?.intValue == server.port)
        #expect((object["requests"] as? NSNumber)?.uint64Value == report.requests)
        #expect((object["duration_s"] as? NSNumber)?.doubleValue == 0.3)
        let latency = try #require(object["latency_us"] as? [String: Any])
        #expect(Set(latency.keys) == ["p50", "p90", "p99", "p999", "max", "mean"])
        let errors = try #require(object["errors"] as? [String: Any])
        #expect(Set(errors.keys) == ["mismatch", "reset", "eof", "connect", "stalled", "dropped"])
        let cpu = try #require(object["cpu"] as? [String: Any])
        #expect(Set(cpu.keys) == ["user_s", "system_s", "share_of_one_core"])
        let window = try #require(object["window"] as? [String: Any])
        let start = try #require((window["start_unix_ns"] as? NSNumber)?.uint64Value)
        let end = try #require((window["end_unix_ns"] as? NSNumber)?.uint64Value)
        #expect(end - start == 300_000_000)
        #expect(report.summaryLines.count >= 6)
    }

    // MARK: Configuration and command line

    @Test("defaults and ranges of the configuration")
    func configurationRanges() throws {
        let defaults = try EchoBenchCommand.parseAsRoot([]) as! EchoBenchCommand
        let configuration = try defaults.benchmarkConfiguration
        #expect(configuration.host == "127.0.0.1" && configuration.port == 6666)
        #expect(configuration.connections == 50 && configuration.length == 128 && configuration.threads == 1)
        #expect(configuration.duration == 10 && configuration.warmup == 2)

        let bad: [[String]] = [
            ["--connections", "0"], ["--connections", "1000001"], ["--length", "0"], ["--length", "16777217"],
            ["--duration", "0"], ["--duration", "-1"], ["--warmup", "-0.5"], ["--threads", "0"], ["--threads", "65"],
            ["--connections", "4", "--threads", "5"], ["--port", "0"], ["--port", "70000"], ["--bogus"],
            ["--connections", "many"],
            // The modes: ranges, exclusions, and options that need another.
            ["--rate", "0"], ["--rate", "-5"], ["--rate", "nan"], ["--pipeline", "0"], ["--pipeline", "4097"],
            ["--requests-per-connection", "0"], ["--stream", "--stream-window", "0"], ["--idle", "-1"],
            ["--idle", "1000001"], ["--rate", "10", "--queue-limit", "0"], ["--arrival", "bursty", "--rate", "1"],
            ["--stream", "--rate", "100"], ["--stream", "--pipeline", "2"], ["--stream", "--requests-per-connection", "1"],
            ["--requests-per-connection", "1", "--rate", "100"], ["--requests-per-connection", "1", "--pipeline", "2"],
            ["--arrival", "poisson"], ["--queue-limit", "10"], ["--stream-window", "4096"], ["--idle-per-process", "10"],
            ["--idle-per-source", "10"], ["--idle", "1000", "--idle-per-source", "2"],
            ["--connections", "1000000", "--rate", "1", "--queue-limit", "1000"],
        ]
        for arguments in bad {
            #expect(throws: (any Error).self, "\(arguments)") { _ = try EchoBenchCommand.parseAsRoot(arguments) }
            do {
                _ = try EchoBenchCommand.parseAsRoot(arguments)
            } catch {
                #expect(EchoBenchCommand.exitCode(for: error) == .validationFailure, "\(arguments) exits 64")
            }
        }
        let good = try EchoBenchCommand.parseAsRoot(["--connections", "1000000", "--length", "16777216",
                                                     "--threads", "64", "--warmup", "0", "--duration", "0.1", "--json"])
        #expect(try (good as? EchoBenchCommand)?.benchmarkConfiguration.connections == 1_000_000)
        let modes: [([String], BenchmarkMode)] = [
            ([], .pingPong), (["--pipeline", "4"], .pipeline(depth: 4)),
            (["--rate", "100", "--arrival", "poisson"], .rate(.init(perSecond: 100, arrival: .poisson, queueLimit: 1000, inFlight: 1))),
            (["--rate", "100", "--pipeline", "4", "--queue-limit", "5"], .rate(.init(perSecond: 100, arrival: .uniform, queueLimit: 5, inFlight: 4))),
            (["--requests-per-connection", "1"], .churn(requestsPerConnection: 1)),
            (["--stream", "--stream-window", "4096"], .stream(window: 4096)),
            (["--idle", "10", "--idle-per-process", "5"], .pingPong),
        ]
        for (arguments, mode) in modes {
            let command = try EchoBenchCommand.parseAsRoot(arguments) as? EchoBenchCommand
            #expect(try command?.benchmarkConfiguration.mode == mode, "\(arguments)")
        }
    }

    @Test("connections are split evenly across loops")
    func shares() {
        let configuration = BenchmarkConfiguration(port: 1, connections: 10, threads: 3)
        #expect((0..<3).map { configuration.share(ofLoop: $0) } == [0..<4, 4..<7, 7..<10])
        let one = BenchmarkConfiguration(port: 1, connections: 64, threads: 64)
        #expect((0..<64).allSatisfy { one.share(ofLoop: $0).count == 1 })
        #expect(configuration.endpoint == "127.0.0.1:1")
        var ipv6 = configuration
        ipv6.host = "::1"
        #expect(ipv6.endpoint == "[::1]:1")
    }

    // MARK: Payload

    @Test("every message differs by connection, request and position")
    func payload() {
        let a = Payload.message(connection: 1, sequence: 1, length: 64)
        let b = Payload.message(connection: 1, sequence: 2, length: 64)
        let c = Payload.message(connection: 2, sequence: 1, length: 64)
        #expect(a != b && a != c && b != c)
        // No byte position agrees everywhere between the stale or foreign message and the right one
        // in more than a few places (the patterns are unrelated).
        #expect(zip(a, b).filter { $0 == $1 }.count < 8)
        #expect(zip(a, c).filter { $0 == $1 }.count < 8)
        // The same message shifted by 8 bytes differs too.
        #expect(Array(a[8...]) != Array(a[..<56]))
        #expect(Payload.message(connection: 7, sequence: 9, length: 13) == Payload.message(connection: 7, sequence: 9, length: 13))
        // What the loop generates from any offset matches the byte-by-byte definition.
        let seed = Payload.seed(connection: 3, sequence: 5)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        for offset in [0, 1, 7, 8, 13, 40] {
            let count = 17
            Payload.fill(buffer, seed: seed, firstWord: offset >> 3, byteCount: (offset & 7) + count)
            let generated = (0..<count).map { buffer.load(fromByteOffset: (offset & 7) + $0, as: UInt8.self) }
            #expect(generated == (0..<count).map { Payload.byte(seed: seed, at: offset + $0) }, "offset \(offset)")
        }
    }
}
