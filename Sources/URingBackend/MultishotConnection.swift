/// The state of one connection in the multishot loop.
///
/// Receives keep arriving while a send is in flight, so each connection has a queue of filled
/// buffers (linked through ``BufferQueue``) that it sends one at a time, oldest first.
struct MultishotConnection: ConnectionRecord {
    /// The slot holds a connection this loop owns.
    var isOpen = false
    /// A multishot receive is armed (its last completion carried `IORING_CQE_F_MORE`).
    var isReceiving = false
    /// A send is in flight (never more than one per socket: completion order is not guaranteed).
    var isSending = false
    /// The peer closed its side: close once every queued byte is sent.
    var peerClosed = false
    /// Broken or being stopped: close once nothing is in flight.
    var isClosing = false
    /// The receive was cancelled because too many buffers wait to be sent (the peer reads slowly).
    var isPaused = false
    /// Waiting in the starved queue for buffers to return to the ring.
    var isStarved = false
    /// First and last queued buffer ids, or -1.
    var queueHead: Int32 = -1
    var queueTail: Int32 = -1
    /// Buffers in the queue, the one being sent included.
    var queued: Int32 = 0
    /// Bytes of the head buffer already sent.
    var sendOffset: Int32 = 0
    /// The next descriptor in the starved queue, or -1.
    var nextStarved: Int32 = -1

    init() {}

    /// Nothing of this connection is in flight in the kernel.
    var isIdle: Bool { !isReceiving && !isSending }
}
