import Synchronization

/// Statistics that one thread writes and any thread reads while the server runs.
///
/// A single event loop keeps a plain ``ServerStatistics`` and calls ``publish(_:)`` once per
/// loop turn: relaxed atomic stores, a plain `mov` each on x86-64, no lock and no read-modify-write.
/// Servers with several writers (the threaded blocking mode) call ``add(_:)`` instead.
public final class LiveStatistics: Sendable {
    private let counters = InlineArray<24, Atomic<UInt64>> { _ in Atomic(0) }

    public init() {}

    /// Replaces the published counters with `s` (one writer only).
    @inline(__always)
    public func publish(_ s: ServerStatistics) {
        for index in 0..<ServerStatistics.capacity {
            counters[index].store(s[slot: index], ordering: .relaxed)
        }
    }

    /// Adds `d` to the published counters (any number of writers).
    public func add(_ d: ServerStatistics) {
        for index in 0..<ServerStatistics.capacity where d[slot: index] != 0 {
            counters[index].wrappingAdd(d[slot: index], ordering: .relaxed)
        }
    }

    /// The counters as last published.
    public func snapshot() -> ServerStatistics {
        var s = ServerStatistics()
        for index in 0..<ServerStatistics.capacity {
            s[slot: index] = counters[index].load(ordering: .relaxed)
        }
        return s
    }
}
