import Backend
import CLibUring

/// What every mode's handlers work with: the ring, the listener, the counters, and whether the
/// loop is stopping and why. Owned by the ``LoopDriver``, lent to its ``LoopMode`` for each call.
struct LoopContext: ~Copyable {
    /// The ring every request goes through.
    let ring: Ring
    /// The listening socket (owned by the caller).
    let listener: Int32
    /// The counters, published once per turn.
    var statistics = ServerStatistics()
    /// Set by the stop signal or a failure: accept nothing more, and end the loop after this turn.
    private(set) var stopping = false
    /// Why the loop ends early, if it does: thrown once every connection is closed.
    private(set) var failure: EchoError?

    init(ring: consuming Ring, listener: Int32) {
        self.ring = ring
        self.listener = listener
    }

    /// The next free submission entry (the queue is flushed first when full), counting the enter.
    @inline(__always)
    mutating func submission() -> UnsafeMutablePointer<io_uring_sqe> {
        ring.submission(enters: &statistics[.ioUringEnter])
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
