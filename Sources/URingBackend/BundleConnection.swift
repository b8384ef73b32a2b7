/// The state of one connection in the bundle loop.
///
/// Positions count the connection's own ring entries (16 bits, wrapping, like the kernel's head):
/// the buffers from `sent` up to `received` hold bytes waiting to be echoed, oldest first.
struct BundleConnection: ConnectionRecord {
    /// The slot holds a connection this loop owns.
    var isOpen = false
    /// A multishot receive is armed.
    var isReceiving = false
    /// A send is in flight (one per socket).
    var isSending = false
    /// The peer closed its side: close once every received byte is sent.
    var peerClosed = false
    /// Broken or being stopped: close once nothing is in flight.
    var isClosing = false
    /// Its receive ended for lack of buffers (all of them wait to be sent): receive again once a
    /// send has returned one.
    var isStarved = false
    /// The ring position after the last buffer received.
    var received: UInt16 = 0
    /// The ring position of the buffer being sent.
    var sent: UInt16 = 0
    /// Bytes of that buffer already sent.
    var sendOffset: Int32 = 0
    /// The connection's buffers and ring, while it is open.
    var buffers: ConnectionBufferRing?

    init() {}

    /// Buffers received and not yet sent.
    var queued: UInt16 { received &- sent }
}
