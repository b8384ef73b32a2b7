#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CLinux

/// A one-way "please stop" that event loops can wait on.
///
/// It owns an `eventfd`: ``requestStop()`` makes it readable, so an epoll loop can watch it and an
/// io_uring loop can keep a read pending on it. Loops that block in calls that cannot watch a
/// descriptor (a blocking `accept` or `read`) register a waker, which ``requestStop()`` runs once.
public final class StopSignal: Sendable {
    /// The eventfd that becomes readable once a stop is requested.
    public let fileDescriptor: Int32
    private let requested = Atomic<Bool>(false)
    private let wakers = Mutex<[@Sendable () -> Void]>([])

    public init() throws(EchoError) {
        fileDescriptor = try SystemCall.run("eventfd") { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) }
    }

    deinit { close(fileDescriptor) }

    /// Whether a stop has been requested.
    public var isRequested: Bool { requested.load(ordering: .acquiring) }

    /// Requests the stop: sets the flag, signals the eventfd and runs every registered waker.
    /// Safe to call from any thread, any number of times; only the first call acts.
    public func requestStop() {
        guard !requested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = write(fileDescriptor, &one, MemoryLayout<UInt64>.size)
        let toRun = wakers.withLock { list in
            let copy = list
            list.removeAll()
            return copy
        }
        for waker in toRun { waker() }
    }

    /// Registers `waker` to run when the stop is requested; runs it at once if it already was.
    public func onStop(_ waker: @escaping @Sendable () -> Void) {
        let runNow = wakers.withLock { list -> Bool in
            if requested.load(ordering: .acquiring) { return true }
            list.append(waker)
            return false
        }
        if runNow { waker() }
    }
}
