/// The figures of the modes beyond ping-pong, and their JSON keys and summary lines.
///
/// Every key is always present; those a mode does not define are `null`.
extension BenchmarkReport {
    /// `--rate`: requests due in the window per second (Poisson arrivals make it differ from the
    /// target a little).
    public var offeredRate: Double? {
        guard configuration.mode == .rate, elapsedSeconds > 0 else { return nil }
        return Double(scheduledInWindow) / elapsedSeconds
    }

    /// `--rate`: requests due in the window and answered, per second.
    public var achievedRate: Double? {
        configuration.mode == .rate ? requestsPerSecond : nil
    }

    /// `--rate`: whether every request due in the window was sent and answered (none dropped,
    /// none still unanswered a stall threshold after the window).
    public var sustained: Bool? {
        configuration.mode == .rate ? requests >= scheduledInWindow : nil
    }

    /// Churn: connections that did all their echoes and closed in the window, per second.
    public var connectionsPerSecond: Double? {
        guard configuration.mode == .churn, elapsedSeconds > 0 else { return nil }
        return Double(connectionsCompleted) / elapsedSeconds
    }

    /// The JSON fields of the modes.
    var modeFields: [String] {
        let c = configuration
        let mode = c.mode
        let rate = mode == .rate
        let churn = mode == .churn
        func optional(_ value: String?) -> String { value ?? "null" }
        return [
            "\"mode\":\(JSONText.string(mode.rawValue))",
            "\"pipeline\":\(c.pipeline)",
            "\"target_rate\":\(optional(c.rate.map { JSONText.number($0) }))",
            "\"arrival\":\(optional(rate ? JSONText.string(c.arrival.rawValue) : nil))",
            "\"queue_limit\":\(optional(rate ? String(c.queueLimit) : nil))",
            "\"offered_rate\":\(optional(offeredRate.map { JSONText.fixed($0, 1) }))",
            "\"achieved_rate\":\(optional(achievedRate.map { JSONText.fixed($0, 1) }))",
            "\"sustained\":\(optional(sustained.map { $0 ? "true" : "false" }))",
            "\"requests_per_connection\":\(optional(c.requestsPerConnection.map { String($0) }))",
            "\"connections_opened\":\(connectionsOpened)",
            "\"connections_per_second\":\(optional(connectionsPerSecond.map { JSONText.fixed($0, 1) }))",
            "\"connect_latency_us\":\(optional(churn ? LatencySummary(connectLatency).json : nil))",
            "\"first_echo_latency_us\":\(optional(churn ? LatencySummary(firstEchoLatency).json : nil))",
            "\"stream_window\":\(optional(mode == .stream ? String(c.streamWindow) : nil))",
            "\"idle\":\(c.idle)",
            "\"idle_established\":\(idleEstablished)",
            "\"idle_processes\":\(idleProcesses)",
            "\"idle_sources\":\(idleSources)",
        ]
    }

    /// The summary lines of the modes (none for plain ping-pong).
    var modeSummaryLines: [String] {
        let c = configuration
        var lines: [String] = []
        switch c.mode {
        case .pingpong:
            break
        case .pipeline:
            lines.append("  pipeline     \(c.pipeline) requests in flight per connection")
        case .rate:
            let verdict = sustained == true
                ? "sustained"
                : "NOT sustained: \(scheduledInWindow &- min(requests, scheduledInWindow)) of \(scheduledInWindow) due in the window "
                    + "dropped or unanswered"
            lines.append("  rate         target \(JSONText.fixed(c.rate ?? 0, 1))/s (\(c.arrival.rawValue)), "
                + "offered \(JSONText.fixed(offeredRate ?? 0, 1))/s, achieved \(JSONText.fixed(achievedRate ?? 0, 1))/s: \(verdict)")
        case .churn:
            lines.append("  churn        \(c.requestsPerConnection ?? 0) request\(c.requestsPerConnection == 1 ? "" : "s") per connection: "
                + "\(connectionsCompleted) connections done in the window, \(JSONText.fixed(connectionsPerSecond ?? 0, 1))/s; "
                + "\(connectionsOpened) opened in all")
            lines.append("  connect µs   " + LatencySummary(connectLatency).text)
            lines.append("  1st echo µs  " + LatencySummary(firstEchoLatency).text + " (from the connect's start)")
        case .stream:
            lines.append("  stream       \(c.streamWindow) B in flight per connection at most: "
                + "\(JSONText.fixed(mebibytesPerSecond, 2)) MiB/s each way (latency: one sample per send)")
        }
        if c.idle > 0 {
            lines.append("  idle         \(idleEstablished) of \(c.idle) established and held, \(idleProcesses) helper process"
                + "\(idleProcesses == 1 ? "" : "es"), \(idleSources) source address\(idleSources == 1 ? "" : "es")")
        }
        return lines
    }
}
