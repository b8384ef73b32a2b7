/// One client connection's state: a trivial value in the loop's contiguous table.
///
/// A slot's messages are numbered over its whole life, across the connections `--requests-per-connection`
/// opens in its place: message `m` (0-based) is request `m + 1` of ``Payload``, and occupies bytes
/// `[m * length, (m + 1) * length)` of the slot's byte stream. Two byte counters and the number of
/// requests issued describe every mode: what is sent, what is owed back, and which message a byte
/// belongs to. No reply can be mistaken for another connection's or an earlier request's.
struct ClientConnection {
    enum State: UInt8 {
        /// Not opened yet.
        case unused
        /// A non-blocking connect is under way (the connect phase, or a churn reconnect).
        case connecting
        /// Connected; waiting for the start.
        case established
        /// Sending requests and reading echoes.
        case active
        /// Its last echo came after the window closed; no further request.
        case finished
        /// Failed (connect, reset, end of stream, mismatch) and closed; never reconnected.
        case closed
    }

    /// The socket, or -1 once closed.
    var descriptor: Int32 = -1
    var state = State.unused
    /// Whether `EPOLLOUT` is in its interest (the socket took less than was offered).
    var wantsWrite = false
    /// The connection's number across all loops: part of every message's pattern.
    var identifier: UInt32 = 0
    /// Echoes completed on the current connection (`--requests-per-connection`).
    var echoesOnConnection: UInt32 = 0
    /// Requests issued over the slot's life; their times are in the loop's ring. Stream mode:
    /// latency samples taken.
    var issued: UInt64 = 0
    /// Stream mode: latency samples whose byte has come back.
    var samplesDone: UInt64 = 0
    /// Bytes sent over the slot's life.
    var bytesSent: UInt64 = 0
    /// Bytes received (and verified) over the slot's life.
    var bytesReceived: UInt64 = 0
    /// `CLOCK_MONOTONIC` nanoseconds when the current connection's connect began, 0 for the
    /// connections of the connect phase (their first echo waits for the start).
    var connectStarted: UInt64 = 0
}
