import CLibUring

/// The state of one connection in the bundle mode, and its own buffer ring while it is open.
///
/// Positions count the connection's own ring entries (16 bits, wrapping, like the kernel's head):
/// the buffers from `sent` up to `received` hold bytes waiting to be echoed, oldest first. The
/// state is three enums (lifecycle, receive, send); the transitions below change them and return
/// what the loop must submit. Noncopyable because it owns its ``ConnectionBufferRing``: replacing
/// the record with a free one frees the buffers.
struct BundleConnection: LifecycleRecord, ~Copyable {
    /// What the connection's multishot receive is doing.
    enum ReceiveState: UInt8 {
        /// No receive is in flight, and none is waited for.
        case idle
        /// A multishot bundle receive is in flight.
        case armed
        /// It ended for lack of buffers (all of them wait to be sent): armed again once a send
        /// returns one.
        case starved
    }

    var lifecycle = ConnectionLifecycle.free
    var receive = ReceiveState.idle
    var send = SendState.idle
    /// The ring position after the last buffer received.
    var received: UInt16 = 0
    /// The ring position of the buffer being sent.
    var sent: UInt16 = 0
    /// Bytes of that buffer already sent.
    var sendOffset: Int32 = 0
    /// The connection's buffers and ring, while it is open.
    var buffers: ConnectionBufferRing? = nil

    init() {}

    /// A connection just accepted with its registered `buffers`, its receive about to be armed.
    init(accepted buffers: consuming ConnectionBufferRing) {
        lifecycle = .open
        receive = .armed
        self.buffers = consume buffers
    }

    /// Gives up the connection's buffers without freeing them (its ring could not be
    /// unregistered, so the kernel may still use them); returns the bytes given up.
    mutating func leakBuffers() -> Int {
        guard let buffers = buffers.take() else { return 0 }
        return buffers.leak()
    }

    /// Buffers received and not yet sent.
    var queued: UInt16 {
        @inline(__always) get { received &- sent }
    }

    /// Done — broken, or the peer closed and every byte is sent — with nothing in flight, so its
    /// ring can be unregistered and its descriptor closed.
    var isFinished: Bool {
        guard send == .idle, receive != .armed else { return false }
        switch lifecycle {
        case .closing: return true
        case .peerClosed: return queued == 0
        case .open, .free: return false
        }
    }

    /// Marks the connection broken; returns true when its receive is in flight and must be cancelled.
    @inline(__always)
    mutating func beginClosing() -> Bool {
        lifecycle.beginClosing() && receive == .armed
    }

    /// The multishot receive ended with `result`; decides what comes next.
    @inline(__always)
    mutating func receiveEnded(result: Int32) -> ReceiveEndAction {
        receive = .idle
        guard lifecycle == .open else { return .nothing }
        switch ReceiveEnd(result: result) {
        case .endOfStream:
            lifecycle = .peerClosed
            return .nothing
        case .failed:
            return .close
        case .cancelled:
            return .nothing
        case .noBuffers where queued >= ConnectionBufferRing.count:
            // Every buffer waits to be sent: the send that returns one re-arms the receive.
            receive = .starved
            return .nothing
        case .noBuffers, .interrupted, .withData:
            // Ended with data (CQ pressure), interrupted, or starved when buffers had already
            // come back.
            receive = .armed
            return .rearm
        }
    }

    /// A send returned buffers to the ring: true when a starved receive must be armed again.
    @inline(__always)
    mutating func buffersReturned() -> Bool {
        guard receive == .starved, lifecycle == .open else { return false }
        receive = .armed
        return true
    }

    /// Accounts for a receive of `count` bytes: the bundle is the run of ring positions from
    /// `received` on, whole entries each as long as the kernel left it (or `bufferSize` when it
    /// left it whole), until the bytes are accounted for.
    @inline(__always)
    mutating func bundleReceived(_ count: Int32) {
        switch buffers {
        case .some(let ring):
            var left = count
            var position = received
            let whole = Int32(ring.bufferSize)
            while left > 0 {
                let length = ring.entryLength(at: position)
                let filled = min(left, length > 0 ? length : whole)
                ring.setFilled(filled, at: position)
                left &-= filled
                position &+= 1
            }
            received = position
        case .none:
            break
        }
    }

    /// Accounts for a send of `count` bytes: they were the head's unsent bytes and whole buffers
    /// after it; each buffer fully sent goes back to the ring, in order. Returns whether any did.
    @inline(__always)
    mutating func bundleSent(_ count: Int32) -> Bool {
        switch buffers {
        case .some(let ring):
            var remaining = count
            var returned = false
            while remaining > 0 {
                let unsent = ring.filled(at: sent) &- sendOffset
                if remaining < unsent {
                    sendOffset &+= remaining
                    break
                }
                remaining &-= unsent
                sendOffset = 0
                ring.recycle(ConnectionBufferRing.slot(of: sent))
                sent &+= 1
                returned = true
            }
            return returned
        case .none:
            return false
        }
    }

    /// Prepares `sqe` to send every queued buffer and marks the send in flight.
    @inline(__always)
    mutating func prepareSend(_ sqe: UnsafeMutablePointer<io_uring_sqe>, fd: Int32) {
        send = .sending
        switch buffers {
        case .some(let ring):
            ring.prepareSend(sqe, fd: fd, from: sent, count: Int(queued), offset: sendOffset)
        case .none:
            break
        }
    }
}
