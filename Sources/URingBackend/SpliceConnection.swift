/// The state of one connection in the splice loop (``SpliceMode``).
///
/// A connection waits for readiness holding nothing, or moves bytes holding a pipe, or (when no
/// pipe was to be had and its peer did not take a copied echo whole) a pending buffer. It never
/// reads while it holds bytes, so what it holds is bounded by one pipe or one buffer.
struct SpliceConnection: ConnectionRecord {
    /// What the connection is doing.
    enum State: UInt8 {
        /// The slot is free.
        case closed
        /// Waiting for its readiness poll, holding nothing.
        case waiting
        /// A linked splice pair is in flight in io-wq (``URingBackend/SpliceStrategy/linked``).
        case splicing
        /// Holding bytes its peer has not taken (in its pipe, or in ``pending``), waiting for room.
        case holding
    }

    var state = State.closed
    /// Counts the connections this slot has held, so completions of an earlier one are told apart.
    var generation: UInt16 = 0
    /// Whether the multishot readiness poll is armed (``URingBackend/SpliceStrategy/poll``).
    var pollArmed = false
    /// Whether the poll for room to send is armed.
    var pollOutArmed = false
    /// Whether a splice out of the pipe is in flight while holding (linked).
    var sending = false
    /// The ``PipePool`` slot of the pipe it holds, or -1.
    var pipe: Int32 = -1
    /// The bytes in its pipe, or in ``pending`` from ``pendingStart``.
    var held: Int32 = 0
    /// What the splice into the pipe returned, kept until the splice out completes (linked).
    var received: Int32 = 0
    /// Bytes copied in when no pipe was to be had, not yet sent.
    var pending: UnsafeMutableRawPointer?
    var pendingStart: Int32 = 0

    init() {}
}
