/// The workload a run applies: how each connection issues requests and what its echoes complete.
///
/// `--idle` is not a mode: it adds idle connections to any of them. The command line becomes a
/// mode in ``ModeOptions``, which holds the flags, and the combinations that exclude each other.
///
/// Every place where the modes differ is one `switch` in this file (no `default`, so the compiler
/// lists what a new case must answer); each case calls the mode's own code, in its own file
/// (`ClientLoop+Rate.swift`, `ClientLoop+Churn.swift`, `ClientLoop+Stream.swift`; the closed loop
/// of ping-pong and pipeline is `ClientLoop+Requests.swift`). A new workload is a case here with
/// one line in each switch (and a field in ``ModeState`` if its loops keep state), its flags in
/// ``ModeOptions``, and its own file. Only a figure no mode counts yet goes further: a field of
/// `LoopResult`, which `BenchmarkRun` copies into ``BenchmarkReport``.
public enum BenchmarkMode: Sendable, Equatable {
    /// Closed loop, one request in flight per connection (the default).
    case pingPong
    /// Closed loop, `depth` requests in flight per connection (`--pipeline`).
    case pipeline(depth: Int)
    /// Open loop: requests due at an aggregate rate, latency from when each was due (`--rate`).
    case rate(Rate)
    /// Closed loop; each connection closes after `requestsPerConnection` echoes and a new one opens
    /// in its place (`--requests-per-connection`).
    case churn(requestsPerConnection: Int)
    /// Each connection writes continuously, `window` bytes in flight at most, and reads
    /// concurrently (`--stream`, `--stream-window`).
    case stream(window: Int)

    /// The open loop's parameters.
    public struct Rate: Sendable, Equatable {
        /// Requests per second across all connections (`--rate`).
        public var perSecond: Double
        /// How arrivals are spaced (`--arrival`).
        public var arrival: ArrivalSchedule.Arrival
        /// Requests a connection may hold due but not yet sent; arrivals beyond are dropped
        /// (`--queue-limit`).
        public var queueLimit: Int
        /// Requests a connection has in flight at most (`--pipeline`).
        public var inFlight: Int

        public static let defaultQueueLimit = 1000

        public init(perSecond: Double, arrival: ArrivalSchedule.Arrival = .uniform,
                    queueLimit: Int = Rate.defaultQueueLimit, inFlight: Int = 1) {
            self.perSecond = perSecond
            self.arrival = arrival
            self.queueLimit = queueLimit
            self.inFlight = inFlight
        }
    }

    /// `--stream-window`'s default: bytes a streaming connection has in flight at most.
    public static let defaultStreamWindow = 256 << 10

    /// The mode's name in the JSON report (`"mode"`).
    public var name: String {
        switch self {
        case .pingPong: "pingpong"
        case .pipeline: "pipeline"
        case .rate: "rate"
        case .churn: "churn"
        case .stream: "stream"
        }
    }

    /// Requests in flight per connection at most (the report's `pipeline`).
    public var inFlight: Int {
        switch self {
        case .pingPong, .churn, .stream: 1
        case .pipeline(let depth): depth
        case .rate(let rate): rate.inFlight
        }
    }

    /// Checks the mode's values against their ranges.
    ///
    /// - Throws: ``BenchmarkError/invalidConfiguration(_:)`` naming the first value out of range.
    func validate() throws(BenchmarkError) {
        switch self {
        case .pingPong:
            break
        case .pipeline(let depth):
            try Self.check(pipeline: depth)
        case .rate(let rate):
            try Self.check(rate: rate.perSecond)
            try Self.check(queueLimit: rate.queueLimit)
            try Self.check(pipeline: rate.inFlight)
        case .churn(let requestsPerConnection):
            try Self.check(requestsPerConnection: requestsPerConnection)
        case .stream(let window):
            try Self.check(streamWindow: window)
        }
    }

    /// Request times each connection keeps: a power of two, at least the requests it may have
    /// issued and not had back (in flight, and queued with `--rate`); stream mode keeps that many
    /// latency samples.
    var ringCapacity: Int {
        switch self {
        case .pingPong, .churn: 1
        case .pipeline(let depth): depth.nextPowerOfTwo
        case .rate(let rate): (rate.inFlight + rate.queueLimit).nextPowerOfTwo
        case .stream: ClientLoop.streamSamples
        }
    }

    /// Whether one send or read may span messages (then the loop moves whole chunks), rather than
    /// carry one message at most.
    var spansMessages: Bool {
        switch self {
        case .pingPong, .churn: false
        case .pipeline, .rate, .stream: true
        }
    }

    /// Whether the loop keeps, beside each time in the ring, the byte position it waits for.
    var keepsSamplePositions: Bool {
        switch self {
        case .pingPong, .pipeline, .rate, .churn: false
        case .stream: true
        }
    }
}

// MARK: The loop's steps

/// What the modes keep in each loop besides the connections: one field per mode that keeps
/// anything, its type in the mode's own file.
struct ModeState {
    var rate: RateState
    var churn = ChurnState()

    init(configuration: BenchmarkConfiguration, loopIndex: Int) {
        rate = RateState(configuration: configuration, loopIndex: loopIndex)
    }
}

/// What each mode does at each step of a connection's traffic (see ``ClientLoop``).
extension ClientLoop {
    /// The traffic phase begins at `runStart`. Once per run: kept out of line, like ``endMode()``,
    /// so that the loop around the per-request path stays small enough for it to be inlined.
    @inline(never)
    mutating func startMode(runStart: UInt64) {
        switch mode {
        case .pingPong, .pipeline, .churn, .stream: break
        case .rate(let rate): startSchedule(at: runStart, arrival: rate.arrival)
        }
    }

    /// Before each wait: does what is due at `now` and returns when the loop must wake at the
    /// latest.
    @inline(__always)
    mutating func beforeWait(now: UInt64) -> UInt64 {
        switch mode {
        case .pingPong, .pipeline, .churn, .stream:
            return windowEnd
        case .rate(let rate):
            admitArrivals(now: now, queueLimit: rate.queueLimit)
            return min(windowEnd, modeState.rate.schedule.next)
        }
    }

    /// The window is over (or every connection is): what the mode still owes before the loop
    /// counts stalls and closes.
    @inline(never)
    mutating func endMode() {
        switch mode {
        case .pingPong, .pipeline, .churn, .stream:
            break
        case .rate(let rate):
            // The arrivals due since the last wake-up, before the window's end, are still sent.
            admitArrivals(now: ProcessClock.monotonic(), queueLimit: rate.queueLimit)
            drain()
        }
    }

    /// Every socket but those still connecting is closed: what the mode settles last.
    @inline(never)
    mutating func settleMode() {
        switch mode {
        case .pingPong, .pipeline, .rate, .stream: break
        case .churn: settleReconnects()
        }
    }

    /// Connection `slot` becomes active at `now`: issues what the mode starts with (it is sent
    /// next).
    mutating func startConnection(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>, now: UInt64) {
        switch mode {
        case .pingPong, .churn:
            issue(slot, connection, at: now)
        case .pipeline(let depth):
            for _ in 0..<depth { issue(slot, connection, at: now) }
        case .rate, .stream:
            break
        }
    }

    /// How far connection `connection`'s byte stream may be sent now.
    @inline(__always)
    func sendLimit(_ connection: UnsafeMutablePointer<ClientConnection>) -> UInt64 {
        switch mode {
        case .pingPong, .pipeline, .churn:
            return closedLoopSendLimit(connection)
        case .rate(let rate):
            return rateSendLimit(connection, inFlight: UInt64(truncatingIfNeeded: rate.inFlight))
        case .stream(let window):
            return connection.pointee.bytesReceived &+ UInt64(truncatingIfNeeded: window)
        }
    }

    /// A send on connection `slot` just moved its `bytesSent`.
    @inline(__always)
    func didSend(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        switch mode {
        case .pingPong, .pipeline, .rate, .churn: break
        case .stream: sampleSend(slot, connection)
        }
    }

    /// Bytes `[from, to)` of connection `slot`'s stream came back and matched. Returns false when
    /// the connection stops reading (finished, replaced, or the window closed).
    @inline(__always)
    mutating func received(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>,
                           from: UInt64, to: UInt64) -> Bool {
        switch mode {
        case .pingPong, .pipeline, .rate, .churn:
            return completeMessages(slot, connection, from: from, to: to)
        case .stream:
            return streamed(slot, connection, count: to &- from)
        }
    }

    /// The echo of connection `slot`'s request issued (`--rate`: due) at `issuedAt` completed at
    /// `now`. Returns false when the connection stops reading.
    @inline(__always)
    mutating func echoed(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>,
                         issuedAt: UInt64, now: UInt64) -> Bool {
        switch mode {
        case .pingPong, .pipeline:
            guard counted(connection, issuedAt: issuedAt, now: now) else { return false }
            issue(slot, connection, at: now)
            return true
        case .rate:
            answered(due: issuedAt, now: now)
            return true
        case .churn(let requestsPerConnection):
            guard counted(connection, issuedAt: issuedAt, now: now) else { return false }
            return churnEcho(slot, connection, now: now, requestsPerConnection: requestsPerConnection)
        case .stream:
            return true  // its bytes go to `streamed`, never whole messages
        }
    }

    /// Active connection `slot` failed (it is closed next).
    mutating func failed(_ slot: Int) {
        switch mode {
        case .pingPong, .pipeline, .churn, .stream: break
        case .rate: forgetOutstanding(slot)
        }
    }

    /// When the oldest request connection `slot` is waiting for was issued, or nil when nothing is
    /// in flight.
    func oldestOutstanding(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) -> UInt64? {
        switch mode {
        case .pingPong, .pipeline, .rate, .churn: oldestRequest(slot, connection)
        case .stream: oldestSample(slot, connection)
        }
    }
}

// MARK: The report

extension BenchmarkReport {
    /// Bytes echoed in the window, counted one way (stream mode: counted as they came; otherwise
    /// whole messages).
    public var bytes: UInt64 {
        switch configuration.mode {
        case .pingPong, .pipeline, .rate, .churn: requests &* UInt64(configuration.length)
        case .stream: streamBytes
        }
    }

    /// The JSON fields of the modes, in this order; every key is always present, `null` where the
    /// mode does not define it.
    var modeFields: [String] {
        var values = ModeValues()
        switch configuration.mode {
        case .pingPong, .pipeline: break
        case .rate(let rate): rateValues(rate, into: &values)
        case .churn(let requestsPerConnection): churnValues(requestsPerConnection, into: &values)
        case .stream(let window): values.streamWindow = String(window)
        }
        let c = configuration
        func optional(_ value: String?) -> String { value ?? "null" }
        return [
            "\"mode\":\(JSONText.string(c.mode.name))",
            "\"pipeline\":\(c.mode.inFlight)",
            "\"target_rate\":\(optional(values.targetRate))",
            "\"arrival\":\(optional(values.arrival))",
            "\"queue_limit\":\(optional(values.queueLimit))",
            "\"offered_rate\":\(optional(values.offeredRate))",
            "\"achieved_rate\":\(optional(values.achievedRate))",
            "\"sustained\":\(optional(values.sustained))",
            "\"requests_per_connection\":\(optional(values.requestsPerConnection))",
            "\"connections_opened\":\(connectionsOpened)",
            "\"connections_per_second\":\(optional(values.connectionsPerSecond))",
            "\"connect_latency_us\":\(optional(values.connectLatency))",
            "\"first_echo_latency_us\":\(optional(values.firstEchoLatency))",
            "\"stream_window\":\(optional(values.streamWindow))",
            "\"idle\":\(c.idle)",
            "\"idle_established\":\(idleEstablished)",
            "\"idle_processes\":\(idleProcesses)",
            "\"idle_sources\":\(idleSources)",
        ]
    }

    /// The modes' JSON values, as JSON text; nil is `null`.
    struct ModeValues {
        var targetRate, arrival, queueLimit, offeredRate, achievedRate, sustained: String?
        var requestsPerConnection, connectionsPerSecond, connectLatency, firstEchoLatency: String?
        var streamWindow: String?
    }

    /// The summary lines of the modes (none for plain ping-pong), and of `--idle`.
    var modeSummaryLines: [String] {
        var lines: [String] = []
        switch configuration.mode {
        case .pingPong:
            break
        case .pipeline(let depth):
            lines.append("  pipeline     \(depth) requests in flight per connection")
        case .rate(let rate):
            lines.append(rateSummaryLine(rate))
        case .churn(let requestsPerConnection):
            lines += churnSummaryLines(requestsPerConnection)
        case .stream(let window):
            lines.append("  stream       \(window) B in flight per connection at most: "
                + "\(JSONText.fixed(mebibytesPerSecond, 2)) MiB/s each way (latency: one sample per send)")
        }
        let c = configuration
        if c.idle > 0 {
            lines.append("  idle         \(idleEstablished) of \(c.idle) established and held, \(idleProcesses) helper process"
                + "\(idleProcesses == 1 ? "" : "es"), \(idleSources) source address\(idleSources == 1 ? "" : "es")")
        }
        return lines
    }

    /// Requests counted from what the loops tallied (stream mode: bytes over `length`).
    static func requests(_ total: LoopResult, _ configuration: BenchmarkConfiguration) -> UInt64 {
        switch configuration.mode {
        case .pingPong, .pipeline, .rate, .churn: total.requests
        case .stream: total.streamBytes / UInt64(configuration.length)
        }
    }
}
