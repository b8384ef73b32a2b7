/// Failures by kind, over the whole run (connect phase, warm-up, window, and the idle connections).
public struct ErrorCounts: Sendable, Equatable {
    /// An echoed byte differed from the byte sent at that position, or bytes came that nobody asked for.
    public var mismatch: UInt64 = 0
    /// The connection was reset (`ECONNRESET`, `EPIPE`) or another socket error ended it.
    public var reset: UInt64 = 0
    /// The server closed the connection.
    public var eof: UInt64 = 0
    /// Connections that were asked for but never established (refused, timed out, out of
    /// descriptors or ports, or not tried after the server refused), reconnects of `--requests-per-connection`
    /// and idle connections included.
    public var connect: UInt64 = 0
    /// Connections with a request outstanding for longer than the stall threshold when the window
    /// closed (a server that stopped answering, or one serving clients one at a time).
    public var stalled: UInt64 = 0
    /// `--rate`: arrivals dropped because their connection's queue was full (the server, or the
    /// generator, fell that far behind the schedule).
    public var dropped: UInt64 = 0

    public init() {}

    /// Failures that make `echo-bench` exit with status 1: everything but stalls and drops (both
    /// describe a server too slow for the load, not a broken one).
    public var failures: UInt64 { mismatch &+ reset &+ eof &+ connect }

    static func + (lhs: ErrorCounts, rhs: ErrorCounts) -> ErrorCounts {
        var sum = lhs
        sum.mismatch &+= rhs.mismatch
        sum.reset &+= rhs.reset
        sum.eof &+= rhs.eof
        sum.connect &+= rhs.connect
        sum.stalled &+= rhs.stalled
        sum.dropped &+= rhs.dropped
        return sum
    }
}
