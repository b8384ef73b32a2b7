import Histogram

/// What one loop did, handed to the coordinator once it has stopped; the coordinator adds them up.
struct LoopResult: Sendable {
    /// Requests completed inside the measured window (`--rate`: requests due in the window and
    /// answered; `--stream`: messages completed).
    var requests: UInt64 = 0
    /// Their latencies in nanoseconds (`--stream`: one sample per send).
    var latency: Histogram<UInt64>
    var errors = ErrorCounts()
    /// Connections of the connect phase.
    var established = 0
    /// `--rate`: requests due in the window.
    var scheduledInWindow: UInt64 = 0
    /// Churn: connections opened during the run, besides those of the connect phase.
    var reopened: UInt64 = 0
    /// Churn: connections that did all their echoes and closed in the window.
    var connectionsCompleted: UInt64 = 0
    /// Churn: connect latencies (nanoseconds) of the connections opened in the window.
    var connectLatency: Histogram<UInt64>
    /// Churn: nanoseconds from a connect's start to its first echo, for connects opened in the window.
    var firstEchoLatency: Histogram<UInt64>
    /// `--stream`: bytes echoed and verified in the window.
    var streamBytes: UInt64 = 0

    /// An empty result with histograms of the loops' range.
    static var empty: LoopResult {
        LoopResult(latency: ClientLoop.histogram(), connectLatency: ClientLoop.histogram(),
                   firstEchoLatency: ClientLoop.histogram())
    }

    /// Adds `other`'s counts and histograms to this one.
    mutating func add(_ other: LoopResult) {
        requests &+= other.requests
        latency.add(other.latency)
        errors = errors + other.errors
        established += other.established
        scheduledInWindow &+= other.scheduledInWindow
        reopened &+= other.reopened
        connectionsCompleted &+= other.connectionsCompleted
        connectLatency.add(other.connectLatency)
        firstEchoLatency.add(other.firstEchoLatency)
        streamBytes &+= other.streamBytes
    }
}
