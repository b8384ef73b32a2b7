#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
@testable import URingBackend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// `io_uring_submit_and_wait` failing under live connections, through the test hook
    /// (``RingFaultInjection``): the loop must close every connection, report the error, and give
    /// back every descriptor, in each mode.
    @Suite("io_uring ring failure", .timeLimit(.minutes(1)))
    struct URingRingFailure {
        /// Each mode in the best design this kernel offers for it.
        static func options(_ mode: URingBackend.Mode) -> URingBackend.Options {
            URingBackend.Options.negotiated(mode: mode, on: RunningKernel.features).options
        }
        static let modes = RunningKernel.serving(URingBackend.Mode.allCases, named: { "ring failure in \($0) mode" }, options: options)

        @Test("a failed ring closes every connection and reports the errno", arguments: modes)
        func ringFailureClosesEverything(_ mode: URingBackend.Mode) throws {
            TestEnvironment.prepare()
            var trigger: [Int32] = [-1, -1]
            try SystemCall.run("pipe") { pipe(&trigger) }
            defer { _ = close(trigger[0]); _ = close(trigger[1]) }
            let beforeStart = descriptorsRelevant(toPort: -1)

            var options = Self.options(mode)
            options.faultInjection = RingFaultInjection(trigger: trigger[0], code: EIO)
            let server = try EchoServer.start(URingBackend(options: options), host: "127.0.0.1", port: 0)
            defer { _ = try? server.shutdown() }
            let port = server.port
            var clients: [TestClient] = []
            defer { clients.forEach { $0.close() } }
            for index in 0..<8 {
                let client = try TestClient(port: port)
                clients.append(client)
                let data = randomBytes(100 + index, seed: UInt64(index))
                try client.sendAll(data)
                #expect(try client.receiveExactly(data.count) == data)
            }

            var byte: UInt8 = 1
            try #require(write(trigger[1], &byte, 1) == 1)
            // Every client sees its connection end: EOF, or a reset.
            for (index, client) in clients.enumerated() {
                let outcome = client.readableWithin(5)
                #expect(outcome == 0 || outcome == -Int(ECONNRESET),
                        "client \(index): \(outcome.map { String($0) } ?? "nothing within 5 s")")
            }
            clients.forEach { $0.close() }

            // The loop reports the failure; it neither crashes nor stops quietly.
            #expect(throws: EchoError.system("io_uring_submit_and_wait", errno: EIO)) { try server.wait() }
            let statistics = server.statistics.snapshot()
            #expect(statistics[.connectionsAccepted] == 8 && statistics[.connectionsClosed] == 8, "\(describe(statistics))")
            let held = waitFor(timeout: 5, { serverHeldConnections(port: port) }, until: \.isEmpty)
            #expect(held.ok, "the server still holds \(held.last.count) connections")
            // The stop signal's eventfd belongs to `server`, which this test still holds.
            let stopSignal = server.stopSignal.fileDescriptor
            let released = waitFor(timeout: 5, { descriptorsRelevant(toPort: port).filter { $0.key != stopSignal } },
                                   until: { $0.count <= beforeStart.count })
            let extra = released.last.filter { beforeStart[$0.key] != $0.value }
            #expect(released.ok, "\(released.last.count) descriptors, \(beforeStart.count) before start; new: \(summarize(extra))")
        }
    }
}
