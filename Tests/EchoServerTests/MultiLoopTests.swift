import Testing
import Backend
@testable import EchoTestSupport

extension EchoSuite {
    /// `--threads N`: N loops, each with its own `SO_REUSEPORT` listener and its own ring or epoll
    /// instance. The kernel spreads connections by their addresses; every loop must get some and
    /// every client must get its own bytes back.
    @Suite("Several loops", .timeLimit(.minutes(1)))
    struct MultiLoopTests {
        @Test("3 loops share 600 clients and all of them echo", arguments: BackendUnderTest.multiLoop)
        func connectionsAreSpread(_ backend: BackendUnderTest) throws {
            let loops = 3
            let count = 600
            let server = try backend.start(loops: loops)
            #expect(server.listeners.count == loops)
            #expect(Set(server.listeners.map(\.port)).count == 1, "every loop listens on the same port")
            let outcome = ManyConnections.run(port: server.port, count: count, window: 128, timeout: 30) { index in
                ManyConnections.taggedPayload(index: index, size: 1 + (index * 131) % 3000, seed: 77)
            }
            let perLoop = server.statistics.members.map { $0.snapshot()[.connectionsAccepted] }
            let statistics = try stopServer(server)
            #expect(outcome.echoed == count, "\(outcome)")
            #expect(statistics[.connectionsAccepted] == UInt64(count), "\(describe(statistics))")
            #expect(perLoop.allSatisfy { $0 > 0 }, "a loop got no connection: \(perLoop)")
            #expect(perLoop.reduce(0, +) == UInt64(count), "per loop: \(perLoop)")
            #expect(statistics[.bytesReceived] == statistics[.bytesSent])
        }
    }
}
