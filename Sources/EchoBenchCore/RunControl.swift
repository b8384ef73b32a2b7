import CLinux
import Synchronization

#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

/// How the coordinator and the loops meet: each loop reports that its connect phase is over,
/// then waits for the start (or an abort) and the schedule that comes with it.
final class RunControl: Sendable {
    /// A semaphore eventfd: each loop adds 1 when its connect phase is over.
    private let readyDescriptor: Int32
    /// An eventfd written once, never read: readable for every loop from the start on.
    private let goDescriptor: Int32
    private let runStart = Atomic<UInt64>(0)
    private let warmupEnd = Atomic<UInt64>(0)
    private let windowEnd = Atomic<UInt64>(0)
    private let aborted = Atomic<Bool>(false)

    init() throws(BenchmarkError) {
        do throws(EchoError) {
            let ready = try SystemCall.run("eventfd") { eventfd(0, Int32(EFD_CLOEXEC | EFD_SEMAPHORE)) }
            let go = SystemCall.outcome { eventfd(0, Int32(EFD_CLOEXEC)) }
            guard !go.failed else {
                close(ready)
                throw SystemCall.failure("eventfd", code: go.error)
            }
            readyDescriptor = ready
            goDescriptor = go.value
        } catch {
            throw .system(error)
        }
    }

    deinit {
        close(readyDescriptor)
        close(goDescriptor)
    }

    /// Called by a loop once its connect phase is over (whatever its outcome).
    func signalReady() {
        var one: UInt64 = 1
        _ = SystemCall.outcome(retryingInterrupts: true) { write(readyDescriptor, &one, 8) }
    }

    /// Blocks until `count` loops have called ``signalReady()``.
    func waitForReady(count: Int) {
        var taken = 0
        while taken < count {
            var value: UInt64 = 0
            let result = SystemCall.outcome { read(readyDescriptor, &value, 8) }
            if result.value == 8 { taken += 1 } else if result.failed && result.error != EINTR { return }
        }
    }

    /// Starts every loop with the schedule (monotonic nanoseconds).
    func start(runStart: UInt64, warmupEnd: UInt64, windowEnd: UInt64) {
        self.runStart.store(runStart, ordering: .relaxed)
        self.warmupEnd.store(warmupEnd, ordering: .relaxed)
        self.windowEnd.store(windowEnd, ordering: .releasing)
        release()
    }

    /// Tells every loop, waiting or about to, to close its connections and return.
    func abort() {
        aborted.store(true, ordering: .releasing)
        release()
    }

    private func release() {
        var one: UInt64 = 1
        _ = SystemCall.outcome(retryingInterrupts: true) { write(goDescriptor, &one, 8) }
    }

    /// Called by a loop: blocks until ``start(runStart:warmupEnd:windowEnd:)`` or ``abort()``, and
    /// returns the schedule, or `nil` after an abort.
    func waitForStart() -> (runStart: UInt64, warmupEnd: UInt64, windowEnd: UInt64)? {
        var descriptor = pollfd(fd: goDescriptor, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, -1) <= 0 {}
        if aborted.load(ordering: .acquiring) { return nil }
        let end = windowEnd.load(ordering: .acquiring)
        return (runStart.load(ordering: .relaxed), warmupEnd.load(ordering: .relaxed), end)
    }
}

/// Where one loop thread leaves its results.
final class LoopOutcome: Sendable {
    struct ConnectPhase: Sendable {
        var established: Int
        var firstError: Int32
    }

    let connectPhase = Mutex<Result<ConnectPhase, EchoError>?>(nil)
    let result = Mutex<LoopResult?>(nil)
}
