#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
import EpollBackend
import URingBackend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// What `--splice` promises beyond echoing, on every splicing configuration (the conformance
    /// suites run them too): connections hold a pipe only while bytes are in it, pipes nobody
    /// holds are closed once the loop is idle, and with no pipe to be had a connection is served
    /// by copying.
    @Suite("--splice", .timeLimit(.minutes(1)))
    struct Splice {
        /// Every case whose loop splices, on either backend.
        static let backends = BackendUnderTest.runnable.filter(\.loopMode.splices)

        private static func backend(_ backend: BackendUnderTest, pipeLimit: Int? = nil, pipeSize: Int = 65536) -> any EventBackend {
            switch backend.setupHere {
            case .uring(var options):
                options.pipeSize = pipeSize
                if let pipeLimit { options.pipeLimit = pipeLimit }
                return URingBackend(options: options)
            case .epoll(var options):
                options.pipeSize = pipeSize
                if let pipeLimit { options.pipeLimit = pipeLimit }
                return EpollBackend(options: options)
            case .blocking:
                preconditionFailure("blocking does not splice")
            }
        }

        @Test("an idle connection holds no pipe, and every pipe comes back", arguments: backends)
        func idleConnectionsHoldNoPipe(_ backend: BackendUnderTest) throws {
            TestEnvironment.prepare()
            let beforeStart = descriptorsRelevant(toPort: -1)
            let server = try EchoServer.start(Self.backend(backend), host: "127.0.0.1", port: 0)
            var clients: [TestClient] = []
            defer { clients.forEach { $0.close() } }
            for index in 0..<20 {
                let client = try TestClient(port: server.port)
                clients.append(client)
                let data = randomBytes(1000 + 5000 * index, seed: UInt64(index))
                try client.sendAll(data)
                #expect(try client.receiveExactly(data.count) == data)
            }
            // Twenty connections open and idle: every pipe they took is back in the pool.
            let settled = waitFor(timeout: 5, { server.statistics.snapshot() }, until: {
                $0[.pipesTaken] > 0 && $0[.pipesTaken] == $0[.pipesReturned]
            })
            #expect(settled.ok, "pipes held by idle connections: \(describe(settled.last))")
            #expect(settled.last.connectionsOpen == 20, "\(describe(settled.last))")
            #expect(settled.last[.read] == 0, "every echo spliced: \(describe(settled.last))")
            // Idle for a second, the loop closes the pipes nobody holds.
            let pipesClosed = waitFor(timeout: 5, { descriptorsRelevant(toPort: server.port) }, until: {
                !$0.contains { $0.value.hasPrefix("pipe:") && beforeStart[$0.key] != $0.value }
            })
            let extraWhileIdle = pipesClosed.last.filter { beforeStart[$0.key] != $0.value }
            #expect(pipesClosed.ok, "pipes still open while idle: \(summarize(extraWhileIdle))")
            clients.forEach { $0.close() }
            let statistics = try stopServer(server)
            #expect(statistics[.pipesTaken] == statistics[.pipesReturned], "\(describe(statistics))")
            // Every descriptor the server had is checked by the conformance suite's connect/close
            // cycles; here, its pipes.
            let newPipes = descriptorsRelevant(toPort: server.port).filter { $0.value.hasPrefix("pipe:") && beforeStart[$0.key] != $0.value }
            #expect(newPipes.isEmpty, "pipes left open after stop: \(newPipes.count)")
        }

        @Test("a peer that stops reading holds its pipe, and gives it back once it reads", arguments: backends)
        func slowReaderHoldsItsPipe(_ backend: BackendUnderTest) throws {
            TestEnvironment.prepare()
            let server = try EchoServer.start(Self.backend(backend), host: "127.0.0.1", port: 0)
            let client = try TestClient(port: server.port)
            defer { client.close() }
            client.setBufferSizes(16384)
            let data = randomBytes(4 << 20, seed: 7)
            let echoed = Background("slow reader") { () throws -> [UInt8] in
                sleep(seconds: 0.5)  // the server fills the pipe and the sockets meanwhile
                return try client.receiveExactly(data.count)
            }
            try client.sendAll(data)
            #expect(try echoed.wait(timeout: 30) == data)
            let settled = waitFor(timeout: 5, { server.statistics.snapshot() }, until: { $0[.pipesTaken] == $0[.pipesReturned] })
            #expect(settled.ok, "\(describe(settled.last))")
            _ = try stopServer(server)
        }

        @Test("with no pipe free, a connection is served by copying, and every byte comes back", arguments: backends)
        func pipesRunOut(_ backend: BackendUnderTest) throws {
            TestEnvironment.prepare()
            let server = try EchoServer.start(Self.backend(backend, pipeLimit: 1, pipeSize: 4096), host: "127.0.0.1", port: 0)
            // A peer that does not read keeps bytes in the one pipe. A pipe taken at one moment may
            // be in flight; once the peer cannot send either, the server has stopped reading it,
            // which it does only while its pipe holds bytes the peer does not take.
            let stuck = try TestClient(port: server.port)
            defer { stuck.close() }
            stuck.setBufferSizes(16384)
            stuck.setNonBlocking()
            let pattern = randomBytes(1 << 20, seed: 9)
            let held = waitFor(timeout: 10, { () -> (statistics: ServerStatistics, refused: Bool) in
                let sending = pattern.withUnsafeBytes { bytes in
                    SystemCall.outcome { Glibc.send(stuck.fileDescriptor, bytes.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) }
                }
                let refused = sending.failed && sending.error == EAGAIN
                sleep(seconds: 0.01)
                return (server.statistics.snapshot(), refused)
            }, until: { $0.refused && $0.statistics[.pipesTaken] > $0.statistics[.pipesReturned] })
            try #require(held.ok, "the stuck peer never held the pipe: \(describe(held.last.statistics))")
            // Another client now finds no pipe free.
            let other = try TestClient(port: server.port)
            defer { other.close() }
            let data = randomBytes(256 * 1024, seed: 10)
            #expect(try other.echoConcurrently(data) == data)
            let statistics = server.statistics.snapshot()
            #expect(statistics[.read] > 0 && statistics[.pipesTaken] > 0, "both paths served: \(describe(statistics))")
            other.close()
            stuck.close()
            let final = try stopServer(server)
            #expect(final[.pipesTaken] == final[.pipesReturned], "\(describe(final))")
        }

        @Test("--splice is refused where it does not apply")
        func spliceOptions() throws {
            for arguments in [["--backend", "blocking", "--splice"], ["--backend", "epoll", "--pipe-size", "65536"],
                              ["--backend", "epoll", "--splice", "--pipe-size", "100"],
                              ["--backend", "epoll", "--splice", "--splice-mode", "poll"],
                              ["--backend", "uring", "--splice-mode", "linked"],
                              ["--backend", "uring", "--splice", "--splice-mode", "threads"],
                              ["--backend", "uring", "--splice", "--sqpoll"],
                              ["--backend", "uring", "--splice", "--uring-mode", "legacy"],
                              ["--backend", "uring", "--splice", "--buffer-size", "4096"]] {
                let result = try ChildProcess.runEcho(arguments + ["--check"])
                #expect(result.status == .exited(64), "echo \(arguments.joined(separator: " ")): \(result.stderr)")
                #expect(result.stderr.hasPrefix("echo: error:"), "\(result.stderr)")
            }
            for (arguments, summary) in [(["--backend", "epoll", "--splice"], "splice through \(PipePool.defaultPipeSize)-byte pipes"),
                                         (["--backend", "uring", "--splice"], "io_uring splice (poll)"),
                                         (["--backend", "uring", "--splice", "--splice-mode", "linked", "--pipe-size", "262144"],
                                          "io_uring splice (linked) through 262144-byte pipes")] {
                let result = try ChildProcess.runEcho(arguments + ["--check"])
                #expect(result.status == .exited(0), "\(result.stderr)")
                #expect(result.stdout.contains(summary), "\(result.stdout)")
            }
        }
    }
}
