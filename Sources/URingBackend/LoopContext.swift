#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring
import EchoSupport

/// What every mode's handlers work with: the ring, the listener, the counters, the idle stamps,
/// and whether the loop is stopping and why. Owned by the ``LoopDriver``, lent to its ``LoopMode`` for each call.
struct LoopContext: ~Copyable {
    /// The ring every request goes through; torn down by ``LoopDriver`` at the end of its way out.
    var ring: Ring
    /// The listening socket (owned by the caller).
    let listener: Int32
    /// The counters, published once per turn.
    var statistics = ServerStatistics()
    /// When each connection was last active (`--idle-timeout`): modes touch a connection when it
    /// receives bytes or its peer takes some.
    var idle: IdleTracker
    /// Set by the stop signal or a failure: accept nothing more, and end the loop after this turn.
    private(set) var stopping = false
    /// Why the loop ends early, if it does: thrown once every connection is closed.
    private(set) var failure: EchoError?

    init(ring: consuming Ring, listener: Int32, limits: ServerLimits) {
        self.ring = ring
        self.listener = listener
        idle = IdleTracker(limits: limits)
    }

    /// Closes a connection's descriptor: an ordinary one at once with `close(2)`, a direct one
    /// through the ring (its slot in the file table is free once that completes).
    mutating func close(_ descriptor: Descriptor) {
        switch descriptor.kind {
        case .direct:
            let sqe = submission()
            io_uring_prep_close_direct(sqe, UInt32(descriptor.number))
            sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
            sqe.pointee.user_data = UserData(.ignored, fd: descriptor.number).rawValue
        case .ordinary:
            _ = Glibc.close(descriptor.number)
            statistics[.close] &+= 1
        }
    }

    /// Shuts a connection down in both directions, so that its receive in flight ends (end of
    /// stream) and its send in flight fails: how an idle connection is closed whatever it waits
    /// for. At once with `shutdown(2)`, so the descriptor cannot be closed and reused first; a
    /// direct descriptor through the ring, ahead of anything that closes it.
    mutating func shutDown(_ descriptor: Descriptor) {
        switch descriptor.kind {
        case .direct:
            let sqe = submission()
            io_uring_prep_shutdown(sqe, descriptor.number, Int32(SHUT_RDWR))
            descriptor.target(sqe)
            sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
            sqe.pointee.user_data = UserData(.ignored, fd: descriptor.number).rawValue
        case .ordinary:
            _ = Glibc.shutdown(descriptor.number, Int32(SHUT_RDWR))
            statistics[.other] &+= 1
        }
    }

    /// The next free submission entry (the queue is flushed first when full), counting the enter.
    @inline(__always)
    mutating func submission() -> UnsafeMutablePointer<io_uring_sqe> {
        ring.submission(enters: &statistics[.ioUringEnter])
    }

    /// Makes sure the submission queue has room for `count` entries in a row (a linked chain must
    /// not be split across two submissions), submitting what it holds first if need be.
    mutating func makeRoom(for count: UInt32) {
        ring.makeRoom(for: count, enters: &statistics[.ioUringEnter])
    }

    /// The stop signal fired: finish this turn, then close everything.
    mutating func stop() {
        stopping = true
    }

    /// Something the loop cannot serve through happened: stop, and report the first such `error`.
    mutating func fail(_ error: EchoError) {
        if failure == nil { failure = error }
        stopping = true
    }
}
