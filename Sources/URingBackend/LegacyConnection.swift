/// The state of one connection in the legacy loop: which buffer it is sending and how far.
///
/// A connection has exactly one request in flight at any time (a `recv` or a `send`), or waits in
/// the starved queue with none, so it can be closed at once and its descriptor reused safely.
struct LegacyConnection: StarvedQueueMember {
    /// What the connection is doing.
    enum State: UInt8 {
        /// The slot is free.
        case closed
        /// A `recv` is in flight.
        case receiving
        /// A `send` of ``LegacyConnection/sendBuffer`` is in flight.
        case sending
        /// Its `recv` failed for lack of buffers: waiting in the starved queue, nothing in flight.
        case starved
    }

    var state = State.closed
    /// The pool buffer being sent.
    var sendBuffer: UInt16 = 0
    /// Bytes of `sendBuffer` already sent.
    var sendOffset: Int32 = 0
    /// Bytes of `sendBuffer` to send in all.
    var sendLength: Int32 = 0
    /// The next descriptor in the starved queue, or -1.
    var nextStarved: Int32 = -1

    init() {}

    /// A connection just accepted, its first `recv` about to be submitted.
    static var accepted: LegacyConnection {
        var connection = LegacyConnection()
        connection.state = .receiving
        return connection
    }

    /// A receive filled `buffer` with `length` bytes: send them all.
    @inline(__always)
    mutating func startSending(_ buffer: UInt16, length: Int32) {
        state = .sending
        sendBuffer = buffer
        sendOffset = 0
        sendLength = length
    }

    /// A send completed with `count` bytes: true when bytes of the buffer remain to be sent,
    /// false when it is all sent and the connection receives again.
    @inline(__always)
    mutating func sent(_ count: Int32) -> Bool {
        sendOffset &+= count
        if sendOffset < sendLength { return true }
        state = .receiving
        return false
    }
}
