#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
@testable import EchoTestSupport

extension EchoSuite {
    /// Accept failing with `EMFILE`: the server keeps serving the connections it has, does not spin
    /// on the listening socket, and accepts the waiting clients once descriptors are free again.
    /// The server is the `echo` executable under `prlimit --nofile`, so only it runs short.
    @Suite("Descriptor exhaustion", .timeLimit(.minutes(1)))
    struct DescriptorExhaustion {
        static let prlimit = "/usr/bin/prlimit"

        @Test("EMFILE: serve what is open, no spin, accept again once descriptors are free",
              arguments: BackendUnderTest.concurrentLoops)
        func acceptsAgainWhenDescriptorsReturn(_ backend: BackendUnderTest) throws {
            try #require(access(Self.prlimit, X_OK) == 0, "prlimit (util-linux) is needed to limit the server's descriptors")
            let echo = try #require(EchoBinary.path, "the echo executable was not built")
            let port = try freeLoopbackPort()
            let child = try ChildProcess(executable: Self.prlimit, arguments:
                ["--nofile=40:40", "--", echo] + backend.cliArguments + ["--host", "127.0.0.1", "--port", String(port), "--quiet"])
            defer { child.killAndReap() }
            let up = eventually(timeout: 10) {
                guard let probe = try? TestClient(port: port, connectTimeout: 0.5) else { return false }
                probe.close()
                return true
            }
            try #require(up, "echo did not start: \(child.standardError)")

            // 60 clients: the kernel completes every handshake (the backlog is 4096), the server
            // can take only the first 30 or so before accept fails with EMFILE.
            var clients: [TestClient] = []
            defer { clients.forEach { $0.close() } }
            for _ in 0..<60 { clients.append(try TestClient(port: port, ioTimeout: 10)) }
            let first = clients[0]
            let message = randomBytes(1000, seed: 40)
            try first.sendAll(message)
            #expect(try first.receiveExactly(message.count) == message, "an accepted client is still served")

            // Out of descriptors with clients waiting: the server must not burn its CPU retrying.
            let before = try Self.cpuSeconds(of: child.pid)
            sleep(seconds: 1)
            let spent = try Self.cpuSeconds(of: child.pid) - before
            #expect(spent < 0.3, "the server used \(spent) s of CPU in 1 s while out of descriptors")
            #expect(child.isRunning, "echo exited: \(child.standardError)")

            // Free descriptors: close the first 40 clients; the last one, which waited in the
            // backlog, is then accepted and served.
            clients.prefix(40).forEach { $0.close() }
            clients.removeFirst(40)
            let last = try #require(clients.last)
            try last.sendAll(message)
            #expect(try last.receiveExactly(message.count) == message, "a client that waited is served once descriptors are free")
            #expect(child.isRunning, "echo exited: \(child.standardError)")
        }

        /// User plus system CPU time of process `pid`, in seconds.
        static func cpuSeconds(of pid: pid_t) throws -> Double {
            let stat = try #require(readWholeFile("/proc/\(pid)/stat"), "no /proc/\(pid)/stat")
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ")
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            return (Double(fields[11]) ?? 0) / ticks + (Double(fields[12]) ?? 0) / ticks
        }
    }
}
