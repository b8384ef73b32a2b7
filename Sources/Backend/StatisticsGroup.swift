/// The statistics of a server's loops, read as one.
///
/// Each loop publishes into its own ``LiveStatistics`` (one writer each, no contention); a reader
/// sums them.
public final class StatisticsGroup: Sendable {
    /// One member per loop.
    public let members: [LiveStatistics]

    public init(loops: Int) {
        members = (0..<max(loops, 1)).map { _ in LiveStatistics() }
    }

    /// The sum of every loop's counters as last published.
    public func snapshot() -> ServerStatistics {
        members.reduce(ServerStatistics()) { $0 + $1.snapshot() }
    }
}
