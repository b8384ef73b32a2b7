#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
@testable import URingBackend
@testable import EchoTestSupport

extension EchoSuite {
    /// Without `IORING_SETUP_SUBMIT_ALL` (kernels before 5.18) the kernel stops taking submissions
    /// at the first one that fails, and the rest stay queued into the next turn. The test hook
    /// queues an entry every kernel refuses ahead of every other turn's sends, so gathered
    /// `sendmsg`s stay queued while the loop goes on: their headers and iovecs must not be reused
    /// until the kernel has taken them, or one connection sends another's bytes.
    @Suite("io_uring partial submit", .timeLimit(.minutes(1)))
    struct URingPartialSubmit {
        /// Multishot as this kernel offers it, with whole 4 KiB buffers: every 64 KiB message spans
        /// buffers, so its echo is a gathered sendmsg.
        static let options: URingBackend.Options = {
            var options = URingBackend.Options.negotiated(mode: .multishot, on: RunningKernel.features).options
            options.incrementalBuffers = false
            options.bufferSize = 4096
            options.bufferCount = 4096
            options.submitAll = false
            options.injectsInvalidSubmission = true
            return options
        }()

        @Test("entries left queued by a partial submit send their own bytes",
              .enabled(if: RunningKernel.lacks(options) == nil, "this kernel has no multishot receive (Linux 6.0)"))
        func partialSubmitKeepsGatheredSends() throws {
            TestEnvironment.prepare()
            let options = Self.options
            let server = try EchoServer.start(URingBackend(options: options), host: "127.0.0.1", port: 0)
            defer { _ = try? server.shutdown() }
            let port = server.port
            let clients = 16, rounds = 40, size = 65536
            let workers = (0..<clients).map { index in
                Background("partial-submit client \(index)") { () throws -> String? in
                    let client = try TestClient(port: port)
                    defer { client.close() }
                    for round in 0..<rounds {
                        let data = randomBytes(size, seed: UInt64(index * 1000 + round))
                        try client.sendAll(data)
                        let echoed = try client.receiveExactly(size)
                        if let mismatch = describeMismatch(expected: data, received: echoed) {
                            return "client \(index), round \(round): \(mismatch)"
                        }
                    }
                    return nil
                }
            }
            for worker in workers {
                let failure = try worker.wait(timeout: 40)
                #expect(failure == nil, "\(failure ?? "")")
            }
            let statistics = try stopServer(server)
            let expected = UInt64(clients * rounds * size)
            #expect(statistics[.bytesReceived] == expected && statistics[.bytesSent] == expected, "\(describe(statistics))")
        }
    }
}
