import Synchronization

/// Statistics that one thread writes and any thread reads while the server runs.
///
/// A single event loop keeps a plain ``ServerStatistics`` and calls ``publish(_:)`` once per
/// loop turn: relaxed atomic stores, a plain `mov` each on x86-64, no lock and no read-modify-write.
/// Servers with several writers (the threaded blocking mode) call ``add(_:)`` instead.
public final class LiveStatistics: Sendable {
    private let accepted = Atomic<UInt64>(0)
    private let closed = Atomic<UInt64>(0)
    private let bytesIn = Atomic<UInt64>(0)
    private let bytesOut = Atomic<UInt64>(0)
    private let requests = Atomic<UInt64>(0)
    private let acceptFailures = Atomic<UInt64>(0)
    private let enter = Atomic<UInt64>(0)
    private let epollWait = Atomic<UInt64>(0)
    private let epollCtl = Atomic<UInt64>(0)
    private let read = Atomic<UInt64>(0)
    private let write = Atomic<UInt64>(0)
    private let accept = Atomic<UInt64>(0)
    private let close = Atomic<UInt64>(0)
    private let other = Atomic<UInt64>(0)

    public init() {}

    /// Replaces the published counters with `s` (one writer only).
    @inline(__always)
    public func publish(_ s: ServerStatistics) {
        accepted.store(s.connectionsAccepted, ordering: .relaxed)
        closed.store(s.connectionsClosed, ordering: .relaxed)
        bytesIn.store(s.bytesReceived, ordering: .relaxed)
        bytesOut.store(s.bytesSent, ordering: .relaxed)
        requests.store(s.requests, ordering: .relaxed)
        acceptFailures.store(s.acceptFailures, ordering: .relaxed)
        enter.store(s.syscalls.ioUringEnter, ordering: .relaxed)
        epollWait.store(s.syscalls.epollWait, ordering: .relaxed)
        epollCtl.store(s.syscalls.epollCtl, ordering: .relaxed)
        read.store(s.syscalls.read, ordering: .relaxed)
        write.store(s.syscalls.write, ordering: .relaxed)
        accept.store(s.syscalls.accept, ordering: .relaxed)
        close.store(s.syscalls.close, ordering: .relaxed)
        other.store(s.syscalls.other, ordering: .relaxed)
    }

    /// Adds `d` to the published counters (any number of writers).
    public func add(_ d: ServerStatistics) {
        Self.add(d.connectionsAccepted, to: accepted)
        Self.add(d.connectionsClosed, to: closed)
        Self.add(d.bytesReceived, to: bytesIn)
        Self.add(d.bytesSent, to: bytesOut)
        Self.add(d.requests, to: requests)
        Self.add(d.acceptFailures, to: acceptFailures)
        Self.add(d.syscalls.ioUringEnter, to: enter)
        Self.add(d.syscalls.epollWait, to: epollWait)
        Self.add(d.syscalls.epollCtl, to: epollCtl)
        Self.add(d.syscalls.read, to: read)
        Self.add(d.syscalls.write, to: write)
        Self.add(d.syscalls.accept, to: accept)
        Self.add(d.syscalls.close, to: close)
        Self.add(d.syscalls.other, to: other)
    }

    @inline(__always)
    private static func add(_ value: UInt64, to counter: borrowing Atomic<UInt64>) {
        if value != 0 { counter.wrappingAdd(value, ordering: .relaxed) }
    }

    /// The counters as last published.
    public func snapshot() -> ServerStatistics {
        var s = ServerStatistics()
        s.connectionsAccepted = accepted.load(ordering: .relaxed)
        s.connectionsClosed = closed.load(ordering: .relaxed)
        s.bytesReceived = bytesIn.load(ordering: .relaxed)
        s.bytesSent = bytesOut.load(ordering: .relaxed)
        s.requests = requests.load(ordering: .relaxed)
        s.acceptFailures = acceptFailures.load(ordering: .relaxed)
        s.syscalls.ioUringEnter = enter.load(ordering: .relaxed)
        s.syscalls.epollWait = epollWait.load(ordering: .relaxed)
        s.syscalls.epollCtl = epollCtl.load(ordering: .relaxed)
        s.syscalls.read = read.load(ordering: .relaxed)
        s.syscalls.write = write.load(ordering: .relaxed)
        s.syscalls.accept = accept.load(ordering: .relaxed)
        s.syscalls.close = close.load(ordering: .relaxed)
        s.syscalls.other = other.load(ordering: .relaxed)
        return s
    }
}
