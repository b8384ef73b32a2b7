#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
import URingBackend

extension EchoSuite {
    /// Injected scarcity in the io_uring backend: a completion queue of 8 entries, a submission queue
    /// of 8 and a pool of eight 512-byte buffers, under 128 clients streaming 128 KiB each at once.
    ///
    /// Completions outnumber the CQ many times over, so the kernel parks them in its overflow list
    /// (`IORING_FEAT_NODROP`) and may end a multishot receive that could not post its completion; the
    /// buffer ring runs dry over and over (`ENOBUFS` ends a multishot receive too). Every byte must still
    /// come back exactly, to the connection that sent it: no exit, no connection left without a receive,
    /// no buffer handed to two connections (each payload is tagged with its connection's index).
    @Suite("Scarcity: tiny rings", .timeLimit(.minutes(1)))
    struct TinyRing {
        /// The io_uring configurations squeezed.
        enum Configuration: String, CaseIterable, CustomTestStringConvertible, Sendable {
            /// The default design: multishot accept and receive, provided-buffer ring, DEFER_TASKRUN.
            case multishot
            /// Multishot without DEFER_TASKRUN: completions are posted from task work at any time.
            case multishotWithoutDeferTaskrun
            /// The seed's design: single-shot receives, IORING_OP_PROVIDE_BUFFERS.
            case legacy

            var testDescription: String { rawValue }

            var options: URingBackend.Options {
                var options: URingBackend.Options
                switch self {
                case .multishot:
                    options = URingBackend.Options()
                case .multishotWithoutDeferTaskrun:
                    options = URingBackend.Options()
                    options.deferTaskrun = false
                case .legacy:
                    options = .legacy
                }
                options.ringEntries = 8
                // The smallest the kernel accepts: the CQ may not be smaller than the SQ.
                options.completionQueueEntries = 8
                options.bufferCount = 8
                options.bufferSize = 512
                return options
            }
        }

        @Test("128 clients streaming 128 KiB each through an 8-entry CQ and eight 512-byte buffers",
              arguments: Configuration.allCases)
        func busyClientsThroughTinyRing(_ configuration: Configuration) throws {
            let count = 128
            let size = 128 * 1024
            TestEnvironment.prepare()
            let server = try EchoServer.start(URingBackend(options: configuration.options), host: "127.0.0.1", port: 0)
            let outcome = ManyConnections.run(port: server.port, count: count, window: count, timeout: 20) { index in
                ManyConnections.taggedPayload(index: index, size: size, seed: 0x5CA2CE)
            }
            let statistics = try stopServer(server)
            #expect(outcome.echoed == count, "\(configuration.options.ringEntries) SQ / \(configuration.options.completionQueueEntries) CQ entries: \(outcome)")
            #expect(statistics.bytesReceived == UInt64(count * size) && statistics.bytesSent == UInt64(count * size),
                    "expected \(count * size) B each way: \(describe(statistics))")
            #expect(statistics.connectionsAccepted == UInt64(count), "\(describe(statistics))")
        }
    }
}
