#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CLinux

/// A plain POSIX thread that runs one closure, for event loops that must not live inside
/// Swift concurrency's cooperative pool.
public final class LoopThread: Sendable {
    private let handle: pthread_t

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts a thread named `name` (at most 15 bytes are kept) that runs `body`.
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(EchoError) {
        let threadName = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        let box = Unmanaged.passRetained(Box {
            _ = clinux_set_thread_name(threadName)
            body()
        }).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard status == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemCall.failure("pthread_create", code: status)
        }
        handle = thread
    }

    /// Pins the thread to CPU `cpu`.
    ///
    /// - Throws: ``EchoError`` `.system` when the kernel refuses (a CPU outside the
    ///   process's cpuset, say).
    public func pin(toCPU cpu: Int) throws(EchoError) {
        try SystemCall.check("pthread_setaffinity_np(CPU \(cpu))", status: clinux_pin_thread(handle, Int32(clamping: cpu)))
    }

    /// Waits for the thread to finish. Call once.
    public func join() {
        _ = pthread_join(handle, nil)
    }
}
