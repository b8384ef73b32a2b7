#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring
import EchoSupport

/// One io_uring instance and the few calls the loop makes on it.
///
/// Owns the `io_uring` structure liburing fills in; ``exit()`` (or, failing that, `deinit`) tears
/// the ring down, which also cancels whatever is still in flight. Every call that enters the kernel counts itself in the
/// `enters` counter the caller passes, so syscalls per request come from the loop itself.
struct Ring: ~Copyable {
    let raw: UnsafeMutablePointer<io_uring>
    /// The features the kernel reported at set-up (`IORING_FEAT_*`).
    let features: UInt32
    /// The flags the ring was set up with (`IORING_SETUP_*`).
    let flags: UInt32
    /// The timeouts' lengths, where the kernel reads them while they run: the accept back-off
    /// (``AcceptFailure/backoffNanoseconds``) and the idle timeout's tick.
    private let timers: UnsafeMutablePointer<__kernel_timespec>
    /// A failure the next ``submitAndWait(enters:)`` reports instead of entering the kernel: a
    /// submission the ring refused, or the test hook's (``RingFaultInjection``). On the heap, so
    /// calls that only borrow the ring can leave it.
    private let pending: UnsafeMutablePointer<PendingFailure>
    /// Where a submission goes when the ring refuses to take more, so the caller can fill it in
    /// harmlessly; the loop ends at its next wait.
    private let scratch: UnsafeMutablePointer<io_uring_sqe>
    /// Whether the ring is still set up (``exit()`` has not run).
    private(set) var isOpen = true

    private struct PendingFailure {
        /// The error number, or 0 for none.
        var code: Int32 = 0
        /// Whether `io_uring_submit` failed (rather than the test hook asking for a failure).
        var inSubmit = false
    }

    /// Sets up a ring with `entries` submission entries and `parameters` (flags, CQ size, …).
    init(entries: Int, parameters: io_uring_params) throws(EchoError) {
        var parameters = parameters
        raw = .allocate(capacity: 1)
        let status = io_uring_queue_init_params(UInt32(entries), raw, &parameters)
        guard status == 0 else {
            raw.deallocate()
            throw KernelSupport.setupFailed(code: -status, flags: parameters.flags)
        }
        features = parameters.features
        flags = parameters.flags
        timers = .allocate(capacity: 2)
        timers.initialize(to: Self.timespec(AcceptFailure.backoffNanoseconds))
        (timers + 1).initialize(to: __kernel_timespec())
        pending = .allocate(capacity: 1)
        pending.initialize(to: PendingFailure())
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: io_uring_sqe())
    }

    deinit {
        if isOpen { io_uring_queue_exit(raw) }
        raw.deallocate()
        timers.deallocate()
        pending.deallocate()
        scratch.deallocate()
    }

    /// Tears the ring down: the kernel cancels every request still in flight and lets go of the
    /// memory registered with it (buffer rings, files). Nothing may use the ring afterwards. Runs
    /// once; later calls, and `deinit`, do nothing more.
    mutating func exit() {
        guard isOpen else { return }
        io_uring_queue_exit(raw)
        isOpen = false
    }

    /// Queues a one-shot poll for `fd` to become readable (the stop signal's eventfd, say); its
    /// completion carries `operation`.
    func watchReadable(_ fd: Int32, as operation: UserData.Operation, enters: inout UInt64) {
        let sqe = submission(enters: &enters)
        io_uring_prep_poll_add(sqe, fd, UInt32(POLLIN))
        sqe.pointee.user_data = UserData(operation, fd: fd).rawValue
    }

    /// Queues an accept on `listener`: multishot (one request, a completion per connection) or
    /// one connection only; for `kind` direct, into the ring's registered file table; ordinary
    /// ones `nonBlocking` if asked. Its completions carry ``UserData/Operation/accept``.
    func armAccept(listener: Int32, multishot: Bool, into kind: Descriptor.Kind, nonBlocking: Bool = false,
                   enters: inout UInt64) {
        let sqe = submission(enters: &enters)
        let flags = Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        switch (multishot, kind) {
        case (true, .direct): io_uring_prep_multishot_accept_direct(sqe, listener, nil, nil, 0)
        case (true, .ordinary): io_uring_prep_multishot_accept(sqe, listener, nil, nil, flags)
        case (false, .direct):  // IORING_FILE_INDEX_ALLOC, less the 1 liburing adds
            io_uring_prep_accept_direct(sqe, listener, nil, nil, 0, UInt32.max - 1)
        case (false, .ordinary): io_uring_prep_accept(sqe, listener, nil, nil, flags)
        }
        sqe.pointee.user_data = UserData(.accept).rawValue
    }

    /// Queues the accept back-off (``AcceptFailure/backoffNanoseconds``); its completion
    /// (``UserData/Operation/acceptRetry``) tells the loop to accept again.
    func scheduleAcceptRetry(enters: inout UInt64) {
        let sqe = submission(enters: &enters)
        io_uring_prep_timeout(sqe, timers, 0, 0)
        sqe.pointee.user_data = UserData(.acceptRetry).rawValue
    }

    /// Queues the next tick of the idle timeout, `nanoseconds` from now (``UserData/Operation/tick``).
    func scheduleTick(nanoseconds: UInt64, enters: inout UInt64) {
        timers[1] = Self.timespec(nanoseconds)
        let sqe = submission(enters: &enters)
        io_uring_prep_timeout(sqe, timers + 1, 0, 0)
        sqe.pointee.user_data = UserData(.tick).rawValue
    }

    private static func timespec(_ nanoseconds: UInt64) -> __kernel_timespec {
        __kernel_timespec(tv_sec: Int64(nanoseconds / 1_000_000_000), tv_nsec: Int64(nanoseconds % 1_000_000_000))
    }

    /// Submits what the queue holds when fewer than `count` entries are free (a linked chain must
    /// go in one submission). A failed submit leaves it to ``submission(enters:)`` to report.
    func makeRoom(for count: UInt32, enters: inout UInt64) {
        guard io_uring_sq_space_left(raw) < count else { return }
        _ = io_uring_submit(raw)
        enters &+= 1
    }

    /// The next free submission entry; when the queue is full, submits what it holds first.
    @inline(__always)
    func submission(enters: inout UInt64) -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(raw) { return sqe }
        return submissionAfterFlush(enters: &enters)
    }

    @inline(never)
    private func submissionAfterFlush(enters: inout UInt64) -> UnsafeMutablePointer<io_uring_sqe> {
        while true {
            let status = io_uring_submit(raw)
            enters &+= 1
            if let sqe = io_uring_get_sqe(raw) { return sqe }
            if status < 0 && status != -EINTR && status != -EAGAIN && status != -EBUSY {
                // Only a broken ring refuses submissions: nothing sensible can continue. The
                // caller fills in the scratch entry, and the next wait reports the failure.
                if pending.pointee.code == 0 { pending.pointee = PendingFailure(code: -status, inSubmit: true) }
                scratch.pointee = io_uring_sqe()
                return scratch
            }
        }
    }

    /// The submission-queue position after the last entry queued (liburing's local tail).
    var queuedTail: UInt32 {
        @inline(__always) get { raw.pointee.sq.sqe_tail }
    }

    /// The submission-queue position after the last entry the kernel has taken. Without `SQPOLL`
    /// it moves only inside `io_uring_enter`, on this thread.
    var takenHead: UInt32 {
        @inline(__always) get { raw.pointee.sq.khead.pointee }
    }

    /// Queues an entry the kernel refuses (an opcode no kernel has), for the partial-submit test:
    /// without `SUBMIT_ALL`, the kernel stops taking entries there. Its completion is ignored.
    func queueInvalidSubmission(enters: inout UInt64) {
        let sqe = submission(enters: &enters)
        sqe.pointee = io_uring_sqe()
        sqe.pointee.opcode = UInt8.max
        sqe.pointee.user_data = UserData(.ignored).rawValue
    }

    /// Submits everything queued and waits for at least one completion.
    ///
    /// - Throws: ``EchoError`` `.system` when the ring refuses: nothing sensible can continue.
    @inline(__always)
    func submitAndWait(enters: inout UInt64) throws(EchoError) {
        if _slowPath(pending.pointee.code != 0) { throw takePendingFailure() }
        let status = io_uring_submit_and_wait(raw, 1)
        enters &+= 1
        if status < 0 && status != -EINTR && status != -EAGAIN && status != -EBUSY && status != -ETIME {
            throw SystemCall.failure("io_uring_submit_and_wait", result: status)
        }
    }

    /// Submits everything queued and waits up to `nanoseconds` for a completion (at teardown).
    /// Returns false when the ring refuses, so the caller stops waiting on it.
    func submitAndWait(nanoseconds: Int, enters: inout UInt64) -> Bool {
        var timeout = __kernel_timespec(tv_sec: 0, tv_nsec: Int64(nanoseconds))
        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        let status = io_uring_submit_and_wait_timeout(raw, &cqe, 1, &timeout, nil)
        enters &+= 1
        return status >= 0 || status == -ETIME || status == -EINTR || status == -EAGAIN || status == -EBUSY
    }

    /// Makes the next ``submitAndWait(enters:)`` fail with `code` (the test hook's effect).
    func failNextWait(code: Int32) {
        if pending.pointee.code == 0 { pending.pointee = PendingFailure(code: code, inSubmit: false) }
    }

    @inline(never)
    private func takePendingFailure() -> EchoError {
        let failure = pending.pointee
        pending.pointee = PendingFailure()
        return SystemCall.failure(failure.inSubmit ? "io_uring_submit" : "io_uring_submit_and_wait", code: failure.code)
    }
}

/// Room for one batch of completion pointers, reused every loop turn.
struct CompletionBatch: ~Copyable {
    static let capacity: UInt32 = 256
    let entries: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>

    init() { entries = .allocate(capacity: Int(Self.capacity)) }
    deinit { entries.deallocate() }

    /// Hands every ready completion of `ring` to `handle` in order, in batches through `entries`
    /// (a batch's room), advancing the CQ after each batch.
    ///
    /// Static and on raw pointers so that a loop can pass a closure that mutates the loop itself:
    /// nothing of the loop is borrowed while it runs.
    @inline(__always)
    static func drain(_ ring: UnsafeMutablePointer<io_uring>,
                      through entries: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>,
                      _ handle: (UserData, _ result: Int32, _ flags: UInt32) -> Void) {
        while true {
            let count = io_uring_peek_batch_cqe(ring, entries, capacity)
            if count == 0 { return }
            for index in 0..<Int(count) {
                let cqe = entries[index].unsafelyUnwrapped
                handle(UserData(rawValue: cqe.pointee.user_data), cqe.pointee.res, cqe.pointee.flags)
            }
            io_uring_cq_advance(ring, count)
            if count < capacity { return }
        }
    }
}
