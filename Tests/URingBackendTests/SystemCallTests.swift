#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
import CLibUring
@testable import URingBackend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// The one system-call helper, typed descriptors, and the teardown and failure paths that rely
    /// on them: each checked against the real call or the real kernel.
    @Suite("system calls and descriptors", .timeLimit(.minutes(1)))
    struct SystemCalls {
        // MARK: SystemCall

        @Test("a failed call becomes EchoError.system with the call's name and its error number")
        func failureNamesTheCall() {
            #expect(throws: EchoError.system("close", errno: EBADF)) { try SystemCall.run("close") { close(-1) } }
            let outcome = SystemCall.outcome { close(-1) }
            #expect(outcome.failed && outcome.value == -1 && outcome.error == EBADF)
            #expect(throws: EchoError.system("io_uring_register", errno: EINVAL)) {
                try SystemCall.runLiburing("io_uring_register") { -EINVAL }
            }
            #expect(throws: EchoError.system("pthread_create", errno: EAGAIN)) {
                try SystemCall.check("pthread_create", status: EAGAIN)
            }
            #expect(SystemCall.failure("accept", result: -EMFILE) == .system("accept", errno: EMFILE))
        }

        @Test("a call that succeeds returns its value and no error number, even with errno left set")
        func successReadsNoErrorNumber() throws {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            defer { close(fds[0]); close(fds[1]) }
            Glibc.errno = EIO  // stale: a successful call must not report it
            var byte: UInt8 = 7
            let written = SystemCall.outcome { write(fds[1], &byte, 1) }
            #expect(!written.failed && written.value == 1 && written.error == 0)
            #expect(try SystemCall.run("read") { read(fds[0], &byte, 1) } == 1)
        }

        @Test("EINTR is made again only when asked; other errors are returned at once")
        func interruptsRetriedOnlyWhenAsked() {
            var calls = 0
            let interruptedTwice = { () -> Int32 in
                calls += 1
                if calls <= 2 { Glibc.errno = EINTR; return -1 }
                return 5
            }
            let retried = SystemCall.outcome(retryingInterrupts: true, interruptedTwice)
            #expect(retried.value == 5 && retried.error == 0 && calls == 3)
            calls = 0
            let once = SystemCall.outcome(retryingInterrupts: false, interruptedTwice)
            #expect(once.failed && once.error == EINTR && calls == 1)
            calls = 0
            let other = SystemCall.outcome(retryingInterrupts: true) { () -> Int32 in
                calls += 1
                Glibc.errno = EAGAIN
                return -1
            }
            #expect(other.error == EAGAIN && calls == 1, "only EINTR is retried")
        }

        // MARK: The tests' own clients

        /// The tests' clients read their errors through SystemCall too; a failure must still say
        /// which call failed and why, with the number, as ``EchoError/system(_:errno:)`` does.
        @Test("the tests' clients name a failed call with strerror's text and the error number")
        func testClientsNameTheError() throws {
            let port = try freeLoopbackPort()  // closed again: nothing listens there
            let refused = "\(EchoError.message(for: ECONNREFUSED)) (errno \(ECONNREFUSED))"
            do {
                _ = try TestClient(port: port, connectTimeout: 2)
                Issue.record("connected to 127.0.0.1:\(port), where nothing listens")
            } catch {
                #expect("\(error)" == "connect to 127.0.0.1:\(port) failed: \(refused)")
            }
            let outcome = ManyConnections.run(port: port, count: 2, timeout: 10) { _ in [1] }
            #expect(outcome.connected == 0 && outcome.failureCount == 2, "\(outcome)")
            #expect(outcome.failures.allSatisfy { $0.hasSuffix("connect failed after 4 attempts: \(refused)") },
                    "\(outcome.failures)")
        }

        // MARK: Descriptor

        @Test("Descriptor: only a direct descriptor is named with IOSQE_FIXED_FILE")
        func descriptorTargets() {
            var sqe = io_uring_sqe()
            Descriptor(5, .ordinary).target(&sqe)
            #expect(sqe.flags == 0)
            Descriptor(5, .direct).target(&sqe)
            #expect(sqe.flags == UInt8(1 << IOSQE_FIXED_FILE_BIT))
            #expect(Descriptor(5, .direct).isDirect && !Descriptor(5, .ordinary).isDirect)
            #expect(MemoryLayout<Descriptor>.size <= 8)
        }

        // MARK: Loose ends

        @Test("--pin: a CPU the kernel accepts pins the thread; one it refuses is an error, not silence")
        func pinReportsRefusal() throws {
            var release: [Int32] = [0, 0]
            #expect(pipe(&release) == 0)
            let (waitEnd, wakeEnd) = (release[0], release[1])
            defer { close(waitEnd); close(wakeEnd) }
            // The thread waits on the pipe, so it is alive while it is pinned.
            let thread = try LoopThread(name: "pin-test") {
                var byte: UInt8 = 0
                _ = SystemCall.outcome(retryingInterrupts: true) { read(waitEnd, &byte, 1) }
            }
            defer {
                var byte: UInt8 = 1
                _ = write(wakeEnd, &byte, 1)
                thread.join()
            }
            try thread.pin(toCPU: 0)
            // Past CPU_SETSIZE the set is empty: pthread_setaffinity_np refuses it with EINVAL.
            #expect(throws: EchoError.system("pthread_setaffinity_np(CPU 4096)", errno: EINVAL)) {
                try thread.pin(toCPU: 4096)
            }
        }

        @Test("stats-file failures have their own error, with the path and the reason")
        func statisticsFileError() {
            let error = EchoError.statisticsFile(path: "/gone/stats.json", code: ENOENT)
            #expect(error.errno == ENOENT)
            #expect(error.description == "cannot write --stats-json file '/gone/stats.json': No such file or directory")
        }

        @Test("buffers are aligned to the running kernel's page size, not to 4096")
        func pageSizeFromKernel() {
            #expect(MemoryPage.size == sysconf(Int32(_SC_PAGESIZE)))
            let pool = BufferPool(bufferSize: 1024, count: 4)
            let base = Int(bitPattern: pool.base)
            #expect(base % MemoryPage.size == 0)
            let buffers = ConnectionBufferRing(bufferSize: 1024)
            let ring = Int(bitPattern: buffers.ring)
            let first = Int(bitPattern: buffers.buffer(0)), second = Int(bitPattern: buffers.buffer(1))
            #expect(ring % MemoryPage.size == 0 && first % MemoryPage.size == 0)
            #expect(second - first == 1024)
        }

        @Test("Ring.exit tears the ring down once; later calls and deinit do nothing more")
        func ringExitIsIdempotent() throws {
            var ring = try Ring(entries: 8, parameters: URingBackend.Options().setupParameters)
            let openAtFirst = ring.isOpen
            let descriptor = ring.raw.pointee.ring_fd
            #expect(openAtFirst && fcntl(descriptor, F_GETFD) >= 0)
            ring.exit()
            let openAfterExit = ring.isOpen
            #expect(!openAfterExit)
            #expect(fcntl(descriptor, F_GETFD) == -1, "the ring's descriptor is closed")
            ring.exit()
            let openAfterSecondExit = ring.isOpen
            #expect(!openAfterSecondExit)
        }

        /// A connection's buffer ring the kernel no longer knows (unregistered behind the mode's
        /// back) makes the mode's own unregister fail: its memory must then be leaked and counted,
        /// since in general the kernel may still hold it.
        @Test("bundle: a ring that cannot be unregistered is leaked and counted, never freed")
        func bundleLeaksWhatCannotBeUnregistered() throws {
            var options = URingBackend.Options(mode: .bundle)
            options.bufferSize = 1024
            let ring = try Ring(entries: 8, parameters: options.setupParameters)
            var mode = try BundleMode(options: options, ring: ring)
            var context = LoopContext(ring: ring, listener: -1, limits: ServerLimits())
            var pair: [Int32] = [0, 0]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
            defer { close(pair[1]) }
            let fd = pair[0]
            #expect(mode.adopt(fd, &context))
            let unregistered = io_uring_unregister_buf_ring(context.ring.raw, fd)
            #expect(unregistered == 0)
            mode.close(fd, &context)
            let leaked = context.statistics[.bufferBytesLeaked]
            let closed = context.statistics[.connectionsClosed]
            #expect(leaked == UInt64(ConnectionBufferRing.allocatedBytes(bufferSize: 1024)))
            #expect(closed == 1)
            #expect(fcntl(fd, F_GETFD) == -1, "the descriptor is closed all the same")

            // A ring that unregisters is freed, and nothing is counted.
            var second: [Int32] = [0, 0]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &second) == 0)
            defer { close(second[1]) }
            #expect(mode.adopt(second[0], &context))
            mode.close(second[0], &context)
            let leakedAfterSecond = context.statistics[.bufferBytesLeaked]
            #expect(leakedAfterSecond == leaked, "a ring that unregisters is freed, not counted")
            context.ring.exit()
        }
    }
}
