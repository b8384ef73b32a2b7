#if canImport(Glibc)
import Glibc
#endif
import Testing
import URingBackend
@testable import EchoTestSupport

extension EchoSuite {
    /// The `echo` executable, run as a child process (started with posix_spawn, stopped by PID).
    @Suite("echo CLI", .timeLimit(.minutes(1)))
    struct CLI {
        /// Runs `echo arguments` and expects it to exit with a non-zero status: its result and a
        /// description for messages, or nil (recorded) when it crashed instead.
        private func runFailing(_ arguments: [String], sourceLocation: SourceLocation)
            throws -> ((status: EchoTestSupport.ExitStatus, stdout: String, stderr: String), String)? {
            let result = try ChildProcess.runEcho(arguments)
            let shown = "echo \(arguments.joined(separator: " ")) → \(result.status); stderr: \(result.stderr)"
            guard case .exited(let code) = result.status else {
                Issue.record("crashed: \(shown)", sourceLocation: sourceLocation)
                return nil
            }
            #expect(code != 0, "\(shown)", sourceLocation: sourceLocation)
            return (result, shown)
        }

        /// Bad input: non-zero exit (not a crash), and an error message first on stderr.
        private func expectUsageError(_ arguments: [String], mentioning words: [String] = [],
                                      sourceLocation: SourceLocation = #_sourceLocation) throws {
            guard let (result, shown) = try runFailing(arguments, sourceLocation: sourceLocation) else { return }
            let first = nonEmptyLines(result.stderr).first.map(String.init) ?? ""
            #expect(first.hasPrefix("echo: error:") || first.hasPrefix("Error:"),
                    "first stderr line should be the error: \(shown)", sourceLocation: sourceLocation)
            #expect(!looksLikeCrash(result.stderr), "\(shown)", sourceLocation: sourceLocation)
            for word in words {
                #expect(result.stderr.contains(word), "stderr should mention \(word): \(shown)", sourceLocation: sourceLocation)
            }
        }

        /// A runtime error: non-zero exit and exactly one line, "echo: error: …", on stderr.
        private func expectRuntimeError(_ arguments: [String], containing text: String,
                                        sourceLocation: SourceLocation = #_sourceLocation) throws {
            guard let (result, shown) = try runFailing(arguments, sourceLocation: sourceLocation) else { return }
            let lines = nonEmptyLines(result.stderr)
            #expect(lines.count == 1, "stderr should be one line: \(shown)", sourceLocation: sourceLocation)
            #expect(lines.first?.hasPrefix("echo: error:") == true, "\(shown)", sourceLocation: sourceLocation)
            #expect(result.stderr.lowercased().contains(text), "stderr should say \(text): \(shown)", sourceLocation: sourceLocation)
        }

        @Test("unknown backend: non-zero exit, the message lists the valid ones")
        func unknownBackend() throws {
            try expectUsageError(["--backend", "kqueue"], mentioning: ["uring", "epoll", "blocking"])
        }

        @Test("invalid port: non-zero exit and an error message", arguments: ["70000", "-1", "abc", "65536"])
        func invalidPort(_ value: String) throws {
            try expectUsageError(["--backend", "epoll", "--port", value])
            try expectUsageError(["--backend", "epoll", "--port=\(value)"])
        }

        @Test("invalid blocking mode: non-zero exit and an error message")
        func invalidBlockingMode() throws {
            try expectUsageError(["--backend", "blocking", "--blocking-mode", "turbo"], mentioning: ["naive", "threaded"])
        }

        @Test("port in use: one line saying so, non-zero exit",
              arguments: BackendUnderTest.cli)
        func portInUse(_ backend: BackendUnderTest) throws {
            let (fd, port) = try listeningSocketOnFreePort()
            defer { close(fd) }
            try expectRuntimeError(backend.cliArguments + ["--host", "127.0.0.1", "--port", String(port)],
                                   containing: "address already in use")
        }

        @Test("an address not on this machine: one line, non-zero exit")
        func addressNotAvailable() throws {
            // 192.0.2.1 is TEST-NET-1: never a local address, so bind fails with EADDRNOTAVAIL.
            try expectRuntimeError(["--backend", "epoll", "--host", "192.0.2.1", "--port", String(try freeLoopbackPort())],
                                   containing: "192.0.2.1")
        }

        @Test("out-of-range option values: non-zero exit and an error message",
              arguments: [["--buffer-size", "0"], ["--backlog", "0"], ["--buffer-count", "0"], ["--ring-entries", "0"],
                          ["--stats-interval", "-1"], ["--buffer-size", "lots"], ["--no-such-option"]])
        func invalidOptionValues(_ arguments: [String]) throws {
            try expectUsageError(["--backend", "uring"] + arguments)
        }

        /// On a kernel without receive bundles, each spelling is refused, naming what is missing.
        @Test("--bundle is --uring-mode bundle, also beside --uring-mode multishot; not with legacy")
        func bundleAlias() throws {
            for arguments in [["--uring-mode", "bundle"], ["--bundle"], ["--uring-mode", "multishot", "--bundle"]] {
                guard RunningKernel.features.has(.receiveBundles) else {
                    try expectRuntimeError(["--backend", "uring"] + arguments, containing: "linux 6.10")
                    continue
                }
                let server = try ServerProcess(arguments: ["--backend", "uring"] + arguments)
                try echoOnce(port: server.port)
                let status = server.stop(signal: SIGTERM, timeout: 3)
                let stderr = server.child.standardError
                #expect(status == .exited(0), "\(arguments): \(stderr)")
                #expect(stderr.contains("(io_uring bundle,"), "\(arguments) should start the bundle mode: \(stderr)")
            }
            try expectUsageError(["--backend", "uring", "--uring-mode", "legacy", "--bundle"], mentioning: ["--bundle"])
        }

        @Test("--help exits 0 and names every backend")
        func help() throws {
            let result = try ChildProcess.runEcho(["--help"])
            #expect(result.status == .exited(0), "stderr: \(result.stderr)")
            let text = result.stdout + result.stderr
            for word in ["uring", "epoll", "blocking", "--port", "--backend"] {
                #expect(text.contains(word), "--help should mention \(word): \(text)")
            }
        }

        /// The time bound catches a hang, not a slow stop, and is on the server's own measure of its
        /// shutdown (signal to every loop joined), not on a wall clock around the exit: a loaded CI
        /// machine has taken 1.5 s to deliver and reap a stop that takes milliseconds.
        @Test("SIGTERM/SIGINT: exit 0, no hang (the server's own shutdown time), statistics on stderr",
              arguments: [SIGTERM, SIGINT], BackendUnderTest.cli)
        func signalStopsServer(_ signal: Int32, _ backend: BackendUnderTest) throws {
            let server = try ServerProcess(arguments: backend.cliArguments)
            // One client echoes, then stays connected (the naive server is blocked serving it).
            let client = try TestClient(port: server.port)
            defer { client.close() }
            let data = randomBytes(12_345, seed: 12_345)
            let echoed = try client.echoConcurrently(data)
            #expect(echoed == data)
            let status = server.stop(signal: signal, timeout: 5)
            let stderr = server.child.standardError
            #expect(status == .exited(0), "\(status.map(\.description) ?? "still running 5 s after signal \(signal)"); stderr: \(stderr)")
            let report = FinalReport(stderr: stderr)
            #expect(report != nil, "no statistics on stderr: \(stderr)")
            let shutdown = report?.shutdownSeconds
            #expect(shutdown != nil, "the report should say how long the shutdown took: \(stderr)")
            #expect((shutdown ?? 0) < 3, "the shutdown took \(shutdown ?? 0) s after signal \(signal): \(stderr)")
            #expect(stderr.contains("12345"), "the statistics should count the 12345 bytes echoed: \(stderr)")
            #expect(!looksLikeCrash(stderr), "stderr: \(stderr)")
        }

        /// The sampling protocol the tests wait with (remove the file, SIGUSR1, wait for it): each
        /// sample is the counters of the moment, and the document at stop is the final one.
        @Test("--stats-json: each SIGUSR1 writes the counters of the moment, the stop the final ones")
        func statsJSONSamples() throws {
            let server = try ServerProcess(arguments: ["--backend", "epoll", "--quiet"], statistics: true)
            let clients = try (0..<3).map { _ in try TestClient(port: server.port) }
            for (index, client) in clients.enumerated() {
                let data = randomBytes(100, seed: UInt64(index))
                #expect(try client.echoConcurrently(data) == data)
            }
            // The start-up probe and the three clients; the clients still connected. A loop publishes
            // its counters at the end of its turn, just after the echo its client may already have
            // read: wait for the counters that echo reaches, then check them all.
            let held = try server.waitUntil("3 connections open, 300 bytes echoed") {
                $0.integer("connections_open") >= 3 && $0.integer("bytes_sent") >= 300
            }
            #expect(held.integer("connections_open") == 3, "\(held)")
            #expect(held.integer("connections_accepted") == 4, "\(held)")
            #expect(held.integer("bytes_received") == 300 && held.integer("bytes_sent") == 300, "\(held)")
            #expect(held.integer("syscalls.total") > 0 && held["reason"] as? String == "signal", "\(held)")
            clients.forEach { $0.close() }
            let released = try server.waitUntil("closed every connection") { $0.integer("connections_closed") == 4 }
            #expect(released.integer("connections_open") == 0, "\(released)")
            #expect(released.integer("sample") > held.integer("sample"), "samples are numbered: \(held) then \(released)")
            #expect(server.stop(signal: SIGTERM, timeout: 5) == .exited(0), "stderr: \(server.child.standardError)")
            let final = try server.writtenStatistics()
            #expect(final["reason"] as? String == "stop" && final.integer("connections_accepted") == 4, "\(final)")
        }

        /// A stats file that can no longer be written (its folder removed while the server runs)
        /// is reported as that, and the server serves on: it is not a configuration error.
        @Test("--stats-json: a write that fails at run time is reported, and the server serves on")
        func statsJSONFailsAtRunTime() throws {
            let directory = "/tmp/echo-stats-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            #expect(mkdir(directory, 0o755) == 0)
            let path = directory + "/stats.json"
            defer { unlink(path); unlink(path + ".tmp"); rmdir(directory) }
            let server = try ServerProcess(arguments: ["--backend", "epoll", "--quiet", "--stats-json", path])
            let deadline = monotonicNow() + 5
            while access(path, F_OK) != 0 && monotonicNow() < deadline { usleep(10_000) }
            #expect(unlink(path) == 0 && rmdir(directory) == 0, "the start wrote the file")
            server.child.send(signal: SIGUSR1)
            let expected = "echo: error: cannot write --stats-json file '\(path)': No such file or directory"
            while !server.child.standardError.contains(expected) && monotonicNow() < deadline + 5 { usleep(10_000) }
            #expect(server.child.standardError.contains(expected), "stderr: \(server.child.standardError)")
            #expect(try echoOnce(port: server.port) == 1000, "the server still serves")
            #expect(server.stop(signal: SIGTERM, timeout: 5) == .exited(0), "stderr: \(server.child.standardError)")
        }

        @Test("--quiet: nothing on stderr from start to stop")
        func quiet() throws {
            let server = try ServerProcess(arguments: ["--backend", "epoll", "--quiet"])
            try echoOnce(port: server.port)
            let status = server.stop(signal: SIGTERM, timeout: 3)
            #expect(status == .exited(0))
            #expect(server.child.standardError.isEmpty, "stderr: \(server.child.standardError)")
        }

        @Test("a running echo server echoes bytes through a real client", arguments: BackendUnderTest.cli)
        func echoesThroughChildProcess(_ backend: BackendUnderTest) throws {
            let server = try ServerProcess(arguments: backend.cliArguments + ["--quiet"])
            for round in 0..<3 {
                let client = try TestClient(port: server.port)
                let data = randomBytes(300_000, seed: UInt64(round))
                let echoed = try client.echoConcurrently(data, sliceSizes: [4096, 65536, 1, 100_000])
                #expect(describeMismatch(expected: data, received: echoed) == nil, "round \(round)")
                try client.shutdownWrite()
                #expect(try client.receiveUntilEOF(limit: 0).isEmpty)
                client.close()
            }
            let status = server.stop(signal: SIGTERM, timeout: 3)
            #expect(status == .exited(0), "stderr: \(server.child.standardError)")
        }

        /// In the child SIGPIPE has its default action, as when started from a shell: a server that
        /// writes to a reset socket without MSG_NOSIGNAL (or ignoring SIGPIPE) dies here, where the
        /// in-process tests (SIGPIPE ignored) cannot see it.
        @Test("clients resetting mid-stream do not kill the process (SIGPIPE default)", arguments: BackendUnderTest.cli)
        func survivesResetsWithDefaultSIGPIPE(_ backend: BackendUnderTest) throws {
            let server = try ServerProcess(arguments: backend.cliArguments + ["--quiet"])
            var resetFailure: (any Error)?
            do {
                let reset = try resetClientsMidStream(port: server.port, count: 90,
                                                      threads: backend.servesConcurrentClients ? 3 : 1)
                #expect(reset == 90)
            } catch {
                resetFailure = error
            }
            if let ended = server.child.exitStatus() {
                Issue.record("echo ended while clients reset their connections: \(ended)\(ended == .signaled(SIGPIPE) ? " (SIGPIPE)" : ""); stderr: \(server.child.standardError)")
                return
            }
            if let resetFailure { throw resetFailure }
            #expect(try echoOnce(port: server.port, size: 50_000) == 50_000)
            let status = server.stop(signal: SIGTERM, timeout: 3)
            #expect(status == .exited(0), "stderr: \(server.child.standardError)")
        }
    }
}
