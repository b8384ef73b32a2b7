#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import EchoCLI
import URingBackend
@testable import EchoTestSupport

extension EchoSuite {
    /// `benchmarks/hold` against the `echo` executable: tens of thousands of idle connections from
    /// several client processes (one source address each, 127.0.0.2 and up), every one of them
    /// echoed twice with its bytes checked, the server's memory per idle connection measured, and
    /// the server back to its baseline (connections open, descriptors) once the clients close.
    ///
    /// How many connections a server can hold here is set by RLIMIT_NOFILE, whose hard limit an
    /// unprivileged process cannot raise (20,000 on the machines this was written on). Each epoll or
    /// plain io_uring connection needs a descriptor in the one process, so those hold the limit minus
    /// a few. With `--fixed-files` a connection is a direct descriptor in a ring's registered file
    /// table instead, and each loop's table may be as large as the limit: four loops hold 50,000.
    @Suite("Held connections", .serialized, .timeLimit(.minutes(3)))
    struct HeldConnections {
        /// …/benchmarks/hold; #filePath is …/Tests/EchoServerTests/HeldConnectionsTests.swift.
        static let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("benchmarks/hold").path

        /// The issue's figure.
        static let target = 50_000

        /// RLIMIT_NOFILE's hard limit: the most descriptors this process, and the server, can have.
        static var descriptorLimit: Int {
            var limit = rlimit()
            guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
            return limit.rlim_max >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_max)
        }

        /// A server configuration and the connections it must hold.
        struct Case: CustomTestStringConvertible, Sendable {
            let name: String
            let serverArguments: [String]
            /// Connections this configuration can hold under `limit` descriptors per process.
            let capacity: @Sendable (_ limit: Int) -> Int
            var testDescription: String { name }
        }

        /// Descriptors the server keeps besides its connections: stdio, listeners, rings, eventfds,
        /// the statistics file while it is written.
        static let reserve = 32

        /// The cases whose `echo` serves on the running kernel (`--fixed-files` needs 6.13); each one
        /// left out is said, with why.
        static let cases = RunningKernel.serving(allCases, named: { "hold case \($0.name)" }) { configuration in
            guard case .uring(let options)? = try? ServerSetup(parsing: configuration.serverArguments, on: .running) else {
                return nil
            }
            return options
        }

        static let allCases: [Case] = [
            Case(name: "uring --fixed-files --threads 4", serverArguments:
                    ["--backend", "uring", "--fixed-files", "--threads", "4"],
                 capacity: { 4 * ($0 - reserve) * 9 / 10 }),  // SO_REUSEPORT spreads them unevenly
            Case(name: "uring", serverArguments: ["--backend", "uring"], capacity: { $0 - reserve }),
            Case(name: "epoll", serverArguments: ["--backend", "epoll"], capacity: { $0 - reserve }),
        ]

        @Test("hold and echo on every connection; no receive buffer per idle connection; back to baseline",
              arguments: cases)
        func hold(_ configuration: Case) throws {
            let echo = try #require(EchoBinary.path, "the echo executable was not built")
            try #require(access(Self.script, R_OK) == 0, "no hold script at \(Self.script)")
            let connections = min(Self.target, configuration.capacity(Self.descriptorLimit))
            let child = try ChildProcess(executable: "/usr/bin/env", arguments: [
                "python3", Self.script, "--connections", String(connections), "--idle", "1", "--json",
                "--echo", echo, "--",
            ] + configuration.serverArguments)
            // Hangs, not speed: natively a few seconds a case, under an emulated kernel about 90 s.
            guard let status = child.waitForExit(timeout: 170) else {
                child.killAndReap()  // the script's server and client processes die with it
                Issue.record("hold did not finish within 170 s; stderr: \(child.standardError.suffix(2000))")
                return
            }
            let stdout = child.standardOutput
            let stderr = child.standardError
            #expect(status == .exited(0), "hold: \(status); stderr: \(stderr.suffix(2000)); stdout: \(stdout.suffix(2000))")
            let result = try #require(
                try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any],
                "hold printed no JSON: \(stdout.suffix(2000)); stderr: \(stderr.suffix(2000))")
            #expect(result["ok"] as? Bool == true, "problems: \(result["problems"] ?? "none listed")")

            let connect = result["connect"] as? [String: Any]
            #expect(connect?["connected"] as? Int == connections, "connect: \(connect ?? [:])")
            for round in ["round1", "round2"] {
                let outcome = result[round] as? [String: Any]
                #expect(outcome?["echoed"] as? Int == connections && outcome?["mismatched"] as? Int == 0,
                        "\(round): \(outcome ?? [:])")
            }
            let held = result["held"] as? [String: Any]
            #expect(held?["connections_open"] as? Int == connections, "held: \(held ?? [:])")
            // A receive buffer is 4096 bytes by default: under 1 KiB of RSS per idle connection means
            // no connection keeps one (in io_uring the buffers stay in the shared ring's pool).
            let perConnection = try #require(result["rss_per_connection_bytes"] as? Double)
            #expect(perConnection < 1024, "RSS per idle connection: \(perConnection) bytes")
            let baseline = result["baseline"] as? [String: Any]
            let after = result["after"] as? [String: Any]
            #expect(after?["fds"] as? Int == baseline?["fds"] as? Int
                    && after?["connections_open"] as? Int == baseline?["connections_open"] as? Int,
                    "baseline \(baseline ?? [:]), after closing \(after ?? [:])")
            #expect(result["server_exit"] as? Int == 0, "server exit: \(result["server_exit"] ?? "unknown")")
        }
    }
}
