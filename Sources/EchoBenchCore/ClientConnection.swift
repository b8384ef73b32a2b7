/// One client connection's state: a trivial value in the loop's contiguous table.
struct ClientConnection {
    enum State: UInt8 {
        /// Not opened yet.
        case unused
        /// A non-blocking connect is under way.
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
    /// Whether `EPOLLOUT` is in its interest (a send is partly done).
    var wantsWrite = false
    /// The connection's number across all loops: part of every message's pattern.
    var identifier: UInt32 = 0
    /// The current request's number (1 for the first).
    var sequence: UInt64 = 0
    /// The current message's pattern seed (see ``Payload``).
    var seed: UInt64 = 0
    /// Bytes of the current message sent so far.
    var sent = 0
    /// Bytes of its echo received (and verified) so far.
    var received = 0
    /// `CLOCK_MONOTONIC` nanoseconds when the current request's first send began.
    var started: UInt64 = 0
}

/// Failures by kind, over the whole run (connect phase, warm-up and window).
public struct ErrorCounts: Sendable, Equatable {
    /// An echoed byte differed from the byte sent at that position.
    public var mismatch: UInt64 = 0
    /// The connection was reset (`ECONNRESET`, `EPIPE`) or another socket error ended it.
    public var reset: UInt64 = 0
    /// The server closed the connection.
    public var eof: UInt64 = 0
    /// Connections that were asked for but never established (refused, timed out, out of
    /// descriptors or ports, or not tried after the server refused).
    public var connect: UInt64 = 0
    /// Connections with a request outstanding for longer than the stall threshold when the window
    /// closed (a server that stopped answering, or one serving clients one at a time).
    public var stalled: UInt64 = 0

    public init() {}

    /// Failures that make `echo-bench` exit with status 1: everything but stalls.
    public var failures: UInt64 { mismatch &+ reset &+ eof &+ connect }

    static func + (lhs: ErrorCounts, rhs: ErrorCounts) -> ErrorCounts {
        var sum = lhs
        sum.mismatch &+= rhs.mismatch
        sum.reset &+= rhs.reset
        sum.eof &+= rhs.eof
        sum.connect &+= rhs.connect
        sum.stalled &+= rhs.stalled
        return sum
    }
}
