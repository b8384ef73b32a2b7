#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import Backend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// A start checks its backend once, whatever the number of loops: the loops run what the plan
    /// accepted and do not check again.
    @Suite("EchoServer.Plan: one check per start")
    struct ServerPlanTests {
        /// A backend that counts its checks and serves nothing until stopped.
        struct CountingBackend: EventBackend {
            static let name = "counting"
            let checks: Checks
            let refuses: Bool
            var summary: String { "counting" }

            func validate() throws(EchoError) {
                checks.count.add(1, ordering: .relaxed)
                if refuses { throw .invalidConfiguration("refused") }
            }

            func run(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics,
                     limits: ServerLimits) throws(EchoError) {
                while !stop.isRequested { usleep(1000) }
            }
        }

        /// The checks made, shared between the test and the backend's copies.
        final class Checks: Sendable { let count = Atomic<Int>(0) }

        @Test("a start with 3 loops checks the backend once")
        func oneCheckPerStart() throws {
            let checks = Checks()
            let backend = CountingBackend(checks: checks, refuses: false)
            let server = try EchoServer.start(backend, host: "127.0.0.1", port: 0, loops: 3)
            try server.shutdown()
            #expect(checks.count.load(ordering: .relaxed) == 1)
        }

        @Test("a refused backend or cap fails the plan, before anything is bound")
        func refusalsFailThePlan() {
            let checks = Checks()
            #expect(throws: EchoError.invalidConfiguration("refused")) {
                _ = try EchoServer.Plan(CountingBackend(checks: checks, refuses: true), loops: 2)
            }
            var limits = ServerLimits()
            limits.maxConnections = 2
            #expect(throws: EchoError.invalidConfiguration("invalid connection cap 2: must be at least 1 per loop (3 loops)")) {
                _ = try EchoServer.Plan(CountingBackend(checks: checks, refuses: false), loops: 3, limits: limits)
            }
        }
    }
}
