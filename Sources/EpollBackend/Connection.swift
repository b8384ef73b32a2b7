/// What the loop keeps for one connection: a plain value in a ``ConnectionTable`` slot, indexed by
/// the connection's descriptor.
///
/// A connection either reads (registered for `EPOLLIN`, nothing held) or writes (registered for
/// `EPOLLOUT` only, holding the bytes its peer has not taken yet). It never does both: while bytes
/// are pending it reads nothing, which bounds what it holds to one read's worth. The bytes it holds
/// are in ``pending`` (the copy path) or, when the loop splices, in its pipe.
struct Connection {
    /// Where a connection is in its life.
    enum State: UInt8 {
        /// The slot is free.
        case closed
        /// Waiting for data to echo; nothing pending.
        case reading
        /// Waiting for the peer to make room for ``Connection/pending``.
        case writing
    }

    /// The unsent bytes' buffer (from the loop's ``PendingBufferPool``) while ``state`` is `.writing`.
    var pending: UnsafeMutableRawPointer?
    /// The generation of the connection in this slot; see ``EventToken``.
    var generation: UInt32
    /// The first unsent byte in ``pending`` (0 for bytes in a pipe).
    var pendingStart: Int32
    /// One past the last unsent byte in ``pending``, or the bytes in the pipe.
    var pendingEnd: Int32
    /// The ``PipePool`` slot of the pipe the connection's bytes pass through, or -1: only while a
    /// splicing connection reads or holds bytes.
    var pipe: Int32
    /// Reading, writing or a free slot.
    var state: State

    /// A free slot.
    @inline(__always)
    static var free: Connection {
        Connection(pending: nil, generation: 0, pendingStart: 0, pendingEnd: 0, pipe: -1, state: .closed)
    }

    /// A connection just accepted: reading, nothing pending.
    @inline(__always)
    static func opened(generation: UInt32) -> Connection {
        Connection(pending: nil, generation: generation, pendingStart: 0, pendingEnd: 0, pipe: -1, state: .reading)
    }

    /// The bytes still to send.
    @inline(__always)
    var pendingCount: Int { Int(pendingEnd &- pendingStart) }
}
