/// The state of one connection in the multishot loop.
///
/// Receives keep arriving while a send is in flight, so each connection has a queue of received
/// slices (``SendSlices``) that it sends one at a time, oldest first. Its state is three enums, one per question (where in its life, what its receive is
/// doing, whether a send is in flight); the transitions below change them and return what the
/// loop must submit, so the rules live here and the loop only does the I/O.
struct MultishotConnection: StarvedQueueMember, LifecycleRecord {
    /// What the connection's multishot receive is doing.
    enum ReceiveState: UInt8 {
        /// No receive is in flight, and none is waited for.
        case idle
        /// A multishot receive is in flight.
        case armed
        /// Too many slices wait to be sent (the peer reads slowly): a cancel of the receive is in
        /// flight, and the receive is still in flight until its last completion.
        case cancelling
        /// Paused for back-pressure, no receive in flight: armed again once the queue drains.
        case paused
        /// The receive ended for lack of buffers: waiting in the starved queue.
        case starved
    }

    var lifecycle = ConnectionLifecycle.free
    var receive = ReceiveState.idle
    /// `.sending` from the moment bytes are queued for a send, scheduled for the end of the turn
    /// (``SendSchedule``), until the last send of the queue completes.
    var send = SendState.idle
    /// First and last queued slices, or -1.
    var queueHead: Int32 = -1
    var queueTail: Int32 = -1
    /// Slices in the queue, the one being sent included.
    var queued: Int32 = 0
    /// Bytes of the head slice already sent.
    var sendOffset: Int32 = 0
    /// The next descriptor in the starved queue, or -1.
    var nextStarved: Int32 = -1

    init() {}

    /// A connection just accepted, its receive about to be armed.
    static var accepted: MultishotConnection {
        var connection = MultishotConnection()
        connection.lifecycle = .open
        connection.receive = .armed
        return connection
    }

    /// A receive of this connection is in flight (its last completion has not come).
    var isReceiving: Bool {
        @inline(__always) get { receive == .armed || receive == .cancelling }
    }

    /// Done: broken, or the peer closed and every byte is sent; and nothing of it is in flight and
    /// it is not in the starved queue, so its descriptor can be closed.
    var isFinished: Bool {
        guard send == .idle, !isReceiving, receive != .starved else { return false }
        switch lifecycle {
        case .closing: return true
        case .peerClosed: return queueHead < 0
        case .open, .free: return false
        }
    }

    /// A slice was queued while the receive stays armed: true when the queue has grown to
    /// `threshold` and the receive must be cancelled until it drains.
    @inline(__always)
    mutating func shouldPause(threshold: Int32) -> Bool {
        guard receive == .armed, queued >= threshold else { return false }
        receive = .cancelling
        return true
    }

    /// A cancel of the receive failed (`ENOENT`, `EALREADY`). Most often the receive had ended
    /// first (its completion came before), and there is nothing to do. If the receive still runs,
    /// it must not run unchecked: closing (whether the cancel was the close's or an earlier
    /// pause's), true: the loop shuts the connection down, which ends the receive with the end of
    /// stream; open and paused for back-pressure, it counts as armed again, so the next slice it
    /// queues cancels it again.
    @inline(__always)
    mutating func cancelMissed() -> Bool {
        switch lifecycle {
        case .closing:
            return isReceiving
        case .open:
            if receive == .cancelling { receive = .armed }
            return false
        case .peerClosed, .free:
            return false
        }
    }

    /// The multishot receive ended with `result`; decides what comes next.
    @inline(__always)
    mutating func receiveEnded(result: Int32) -> ReceiveEndAction {
        let paused = receive == .cancelling
        receive = .idle
        // Closing: closed once nothing is in flight. (A peer that closed sends nothing more.)
        guard lifecycle == .open else { return .nothing }
        switch ReceiveEnd(result: result) {
        case .endOfStream:
            lifecycle = .peerClosed
            return .nothing
        case .failed:
            return .close
        case .noBuffers where !paused:
            receive = .starved
            return .starve
        case .cancelled where !paused:
            return .nothing
        case .noBuffers, .cancelled, .interrupted, .withData:
            // Ended with data (CQ pressure), interrupted, or a paused receive's cancel has
            // landed: receive again, unless the pause still waits for its queue to drain.
            if paused && send == .sending {
                receive = .paused
                return .nothing
            }
            receive = .armed
            return .rearm
        }
    }

    /// The send queue has drained (every slice sent): true when a paused receive must be armed
    /// again.
    @inline(__always)
    mutating func sendQueueDrained() -> Bool {
        send = .idle
        guard receive == .paused, lifecycle == .open else { return false }
        receive = .armed
        return true
    }

    /// Taken out of the starved queue once buffers are back: true when the receive must be armed
    /// again, false when the connection is finishing instead (the loop then checks whether it can
    /// close).
    @inline(__always)
    mutating func leaveStarvedQueue() -> Bool {
        receive = .idle
        guard lifecycle == .open else { return false }
        receive = .armed
        return true
    }
}
