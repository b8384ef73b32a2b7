/// The workload a run applies, chosen by the options (see ``BenchmarkConfiguration/mode``).
///
/// `--idle` is not a mode: it adds idle connections to any of them.
public enum BenchmarkMode: String, Sendable, Equatable {
    /// Closed loop, one request in flight per connection (the default).
    case pingpong
    /// Closed loop, `--pipeline` requests in flight per connection.
    case pipeline
    /// Open loop: requests due at an aggregate `--rate`, latency from when each was due.
    case rate
    /// Closed loop; each connection closes after `--requests-per-connection` echoes and a new one
    /// opens in its place.
    case churn
    /// Each connection writes continuously, `--stream-window` bytes in flight at most, and reads
    /// concurrently.
    case stream

    /// Whether requests are issued as echoes come back (every mode but `rate` and `stream`).
    var isClosedLoop: Bool { self == .pingpong || self == .pipeline || self == .churn }
}
