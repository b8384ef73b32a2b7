/// System calls an event loop issued, by kind.
///
/// Loops count each call they make themselves, so syscalls per request come from the server.
public struct SyscallCounts: Equatable, Sendable {
    public var ioUringEnter: UInt64 = 0
    public var epollWait: UInt64 = 0
    public var epollCtl: UInt64 = 0
    public var read: UInt64 = 0
    public var write: UInt64 = 0
    public var accept: UInt64 = 0
    public var close: UInt64 = 0
    public var other: UInt64 = 0

    public init() {}

    /// Every call counted.
    public var total: UInt64 {
        ioUringEnter &+ epollWait &+ epollCtl &+ read &+ write &+ accept &+ close &+ other
    }

    /// The kinds with their names, in a stable order, for reports.
    public var named: [(name: String, count: UInt64)] {
        [("io_uring_enter", ioUringEnter), ("epoll_wait", epollWait), ("epoll_ctl", epollCtl),
         ("read", read), ("write", write), ("accept", accept), ("close", close), ("other", other)]
    }
}

/// What a server did: a plain value, kept by a loop and published through ``LiveStatistics``.
public struct ServerStatistics: Equatable, Sendable {
    /// Connections accepted since start.
    public var connectionsAccepted: UInt64 = 0
    /// Connections closed since start (by the peer, by an error, or at stop).
    public var connectionsClosed: UInt64 = 0
    /// Bytes read from clients.
    public var bytesReceived: UInt64 = 0
    /// Bytes written back to clients.
    public var bytesSent: UInt64 = 0
    /// Requests: reads that returned data, each echoed back.
    public var requests: UInt64 = 0
    /// Accepts refused for lack of descriptors (EMFILE, ENFILE) or memory.
    public var acceptFailures: UInt64 = 0
    /// System calls the loop issued.
    public var syscalls = SyscallCounts()

    public init() {}

    /// Connections open now.
    public var connectionsOpen: UInt64 { connectionsAccepted &- connectionsClosed }

    /// The sum of two sets of counters (for servers that run several loops).
    public static func + (lhs: ServerStatistics, rhs: ServerStatistics) -> ServerStatistics {
        var sum = lhs
        sum.connectionsAccepted &+= rhs.connectionsAccepted
        sum.connectionsClosed &+= rhs.connectionsClosed
        sum.bytesReceived &+= rhs.bytesReceived
        sum.bytesSent &+= rhs.bytesSent
        sum.requests &+= rhs.requests
        sum.acceptFailures &+= rhs.acceptFailures
        sum.syscalls.ioUringEnter &+= rhs.syscalls.ioUringEnter
        sum.syscalls.epollWait &+= rhs.syscalls.epollWait
        sum.syscalls.epollCtl &+= rhs.syscalls.epollCtl
        sum.syscalls.read &+= rhs.syscalls.read
        sum.syscalls.write &+= rhs.syscalls.write
        sum.syscalls.accept &+= rhs.syscalls.accept
        sum.syscalls.close &+= rhs.syscalls.close
        sum.syscalls.other &+= rhs.syscalls.other
        return sum
    }
}
