/// What a server did: a plain value, kept by a loop and published through ``LiveStatistics``.
///
/// Every counter is a case of ``Counter``, which also gives its name in reports and JSON: adding a
/// counter is adding a case. Loops count with `statistics[.requests] &+= 1`, an add at a fixed
/// offset once inlined.
public struct ServerStatistics: Equatable, Sendable {
    /// Room for every ``Counter`` (checked by a test).
    public static let capacity = 24

    @usableFromInline var values = InlineArray<24, UInt64>(repeating: 0)

    public init() {}

    /// The value of `counter`. Inlinable, so a loop in another module adds in place.
    @inlinable
    public subscript(counter: Counter) -> UInt64 {
        @inline(__always) get { values[counter.rawValue] }
        @inline(__always) set { values[counter.rawValue] = newValue }
    }

    /// The value at `index` (a ``Counter``'s raw value, or an unused slot: 0).
    @inlinable
    subscript(slot index: Int) -> UInt64 {
        @inline(__always) get { values[index] }
        @inline(__always) set { values[index] = newValue }
    }

    /// Connections open now.
    @inlinable
    public var connectionsOpen: UInt64 { self[.connectionsAccepted] &- self[.connectionsClosed] }

    /// Every system call counted.
    public var syscallTotal: UInt64 {
        Counter.syscalls.reduce(0) { $0 &+ self[$1] }
    }

    /// The sum of two sets of counters (for servers that run several loops).
    public static func + (lhs: ServerStatistics, rhs: ServerStatistics) -> ServerStatistics {
        var sum = lhs
        for index in 0..<capacity { sum[slot: index] &+= rhs[slot: index] }
        return sum
    }

    public static func == (lhs: ServerStatistics, rhs: ServerStatistics) -> Bool {
        (0..<capacity).allSatisfy { lhs[slot: $0] == rhs[slot: $0] }
    }
}

extension ServerStatistics {
    /// One thing a server counts. The case order is the order of reports and JSON.
    public enum Counter: Int, CaseIterable, Sendable {
        case connectionsAccepted
        case connectionsClosed
        case closedIdle
        case acceptFailures
        case acceptPauses
        case acceptsRefused
        case pipesTaken
        case pipesReturned
        case requests
        case bytesReceived
        case bytesSent
        case ioUringEnter
        case epollWait
        case epollCtl
        case read
        case write
        case accept
        case close
        case splice
        case other
        case bufferBytesLeaked

        /// What a counter is about: JSON puts system calls in an object of their own.
        public enum Group: Sendable { case connections, traffic, syscalls, memory }

        public var group: Group {
            switch self {
            case .connectionsAccepted, .connectionsClosed, .closedIdle, .acceptFailures, .acceptPauses,
                 .acceptsRefused, .pipesTaken, .pipesReturned: return .connections
            case .requests, .bytesReceived, .bytesSent: return .traffic
            case .ioUringEnter, .epollWait, .epollCtl, .read, .write, .accept, .close, .splice, .other: return .syscalls
            case .bufferBytesLeaked: return .memory
            }
        }

        /// The counter's key in `--stats-json` (inside `syscalls` for system calls), and its name in reports.
        public var key: String {
            switch self {
            case .connectionsAccepted: return "connections_accepted"
            case .connectionsClosed: return "connections_closed"
            case .closedIdle: return "closed_idle"
            case .acceptFailures: return "accept_failures"
            case .acceptPauses: return "accept_pauses"
            case .acceptsRefused: return "accepts_refused"
            case .pipesTaken: return "pipes_taken"
            case .pipesReturned: return "pipes_returned"
            case .requests: return "requests"
            case .bytesReceived: return "bytes_received"
            case .bytesSent: return "bytes_sent"
            case .ioUringEnter: return "io_uring_enter"
            case .epollWait: return "epoll_wait"
            case .epollCtl: return "epoll_ctl"
            case .read: return "read"
            case .write: return "write"
            case .accept: return "accept"
            case .close: return "close"
            case .splice: return "splice"
            case .other: return "other"
            case .bufferBytesLeaked: return "buffer_bytes_leaked"
            }
        }

        /// One line for `--help` and the README.
        public var meaning: String {
            switch self {
            case .connectionsAccepted: return "connections accepted since start"
            case .connectionsClosed: return "closed by the peer, an error, a limit or the stop"
            case .closedIdle: return "connections closed by --idle-timeout"
            case .acceptFailures: return "accepts failed for lack of descriptors or memory"
            case .acceptPauses: return "times accepting paused at --max-connections"
            case .acceptsRefused: return "closed at once over the cap (--over-limit close)"
            case .pipesTaken: return "pipes taken by splicing connections (--splice)"
            case .pipesReturned: return "pipes given back (taken - returned: held now)"
            case .requests: return "reads that returned data, each echoed back"
            case .bytesReceived: return "bytes read from clients"
            case .bytesSent: return "bytes written back"
            case .ioUringEnter: return "io_uring_enter calls"
            case .epollWait: return "epoll_wait calls"
            case .epollCtl: return "epoll_ctl calls"
            case .read: return "read calls"
            case .write: return "send and write calls"
            case .accept: return "accept calls"
            case .close: return "close calls"
            case .splice: return "splice calls (--splice)"
            case .other: return "fcntl, setsockopt, shutdown, buffer-ring registration…"
            case .bufferBytesLeaked: return "buffer memory kept, never freed: unregistering its ring failed"
            }
        }

        /// The system calls, in report order.
        public static let syscalls = allCases.filter { $0.group == .syscalls }
    }
}
