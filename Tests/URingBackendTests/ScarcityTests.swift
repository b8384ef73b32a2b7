#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
import URingBackend
import EchoCLI
@testable import EchoTestSupport

extension EchoSuite {
    /// Injected scarcity in the io_uring backend: a completion queue of 8 entries, a submission queue
    /// of 8 and eight 512-byte buffers (in the shared pool; in bundle mode each connection has its
    /// own ring of 512-byte buffers), under 128 clients streaming 128 KiB each at once.
    ///
    /// Completions outnumber the CQ many times over, so the kernel parks them in its overflow list
    /// (`IORING_FEAT_NODROP`) and may end a multishot receive that could not post its completion; the
    /// buffer ring runs dry over and over (`ENOBUFS` ends a multishot receive too). Every byte must still
    /// come back exactly, to the connection that sent it: no exit, no connection left without a receive,
    /// no buffer handed to two connections (each payload is tagged with its connection's index).
    @Suite("Scarcity: tiny rings", .timeLimit(.minutes(2)))
    struct TinyRing {
        /// Every io_uring loop mode, and multishot without `DEFER_TASKRUN` besides: there completions
        /// are posted from task work at any time, not only while the loop waits, a different race
        /// with the overflow list.
        static let configurations = BackendUnderTest.everyLoop.filter { $0.family == .uring }
            + [BackendUnderTest.uringMultishotWithoutDeferTaskrun, .uringMultishotWholeBuffers].filter(BackendUnderTest.runnable.contains)

        /// The options of `backend` (an io_uring case), squeezed.
        static func squeezed(_ backend: BackendUnderTest) throws -> URingBackend.Options {
            guard case .uring(var options) = backend.setupHere else {
                throw TestFailure("\(backend) is not an io_uring configuration")
            }
            Scarcity.squeeze(&options)
            return options
        }

        @Test("128 clients streaming 128 KiB each through an 8-entry CQ and eight 512-byte buffers",
              arguments: configurations)
        func busyClientsThroughTinyRing(_ backend: BackendUnderTest) throws {
            let count = 128
            let size = 128 * 1024
            let options = try Self.squeezed(backend)
            TestEnvironment.prepare()
            let server = try EchoServer.start(URingBackend(options: options), host: "127.0.0.1", port: 0)
            // A stall fails it, not slowness: an emulated kernel takes longer than 20 s (Linux 6.1
            // under qemu echoed 10 of 16 MiB in 20 s, still moving).
            let outcome = ManyConnections.run(port: server.port, count: count, window: count, timeout: 20,
                                              stallTimeout: 10) { index in
                ManyConnections.taggedPayload(index: index, size: size, seed: 0x5CA2CE)
            }
            let statistics = try stopServer(server)
            #expect(outcome.echoed == count, "\(options.ringEntries) SQ / \(options.completionQueueEntries) CQ entries: \(outcome)")
            #expect(statistics[.bytesReceived] == UInt64(count * size) && statistics[.bytesSent] == UInt64(count * size),
                    "expected \(count * size) B each way: \(describe(statistics))")
            #expect(statistics[.connectionsAccepted] == UInt64(count), "\(describe(statistics))")
        }
    }
}
