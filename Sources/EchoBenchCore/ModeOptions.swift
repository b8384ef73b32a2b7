import ArgumentParser

/// The command-line flags that choose echo-bench's workload, and the one place that turns them
/// into a ``BenchmarkMode``: which flags need which, their ranges, and which exclude each other.
public struct ModeOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Open loop: requests per second across all connections.", valueName: "requests/s"))
    var rate: Double?

    @Option(help: ArgumentHelp("With --rate: how requests fall due, uniform or poisson (default uniform).", valueName: "process"))
    var arrival: ArrivalSchedule.Arrival?

    @Option(parsing: .unconditional, help: ArgumentHelp("With --rate: requests a connection may hold waiting before more are dropped (1-65536, default \(BenchmarkMode.Rate.defaultQueueLimit)).", valueName: "count"))
    var queueLimit: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Requests in flight per connection (1-4096; with --rate, at most).", valueName: "count"))
    var pipeline: Int = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Churn: echoes per connection before it closes and a new one opens (1-1000000000).", valueName: "count"))
    var requestsPerConnection: Int?

    @Flag(help: "Each connection writes continuously and reads concurrently.")
    var stream = false

    @Option(parsing: .unconditional, help: ArgumentHelp("With --stream: bytes a connection may have in flight (default \(BenchmarkMode.defaultStreamWindow)).", valueName: "bytes"))
    var streamWindow: Int?

    public init() {}

    /// The mode the flags ask for.
    ///
    /// - Throws: ``BenchmarkError/invalidConfiguration(_:)`` when a flag lacks the one it goes
    ///   with, a value is out of range, or two flags exclude each other, in that order.
    public func mode() throws(BenchmarkError) -> BenchmarkMode {
        let companions: [(given: Bool, option: String, needs: String, present: Bool)] = [
            (arrival != nil, "--arrival", "--rate", rate != nil),
            (queueLimit != nil, "--queue-limit", "--rate", rate != nil),
            (streamWindow != nil, "--stream-window", "--stream", stream),
        ]
        for companion in companions where companion.given && !companion.present {
            throw .invalidConfiguration("\(companion.option) needs \(companion.needs)")
        }
        if let rate { try BenchmarkMode.check(rate: rate) }
        if let queueLimit { try BenchmarkMode.check(queueLimit: queueLimit) }
        try BenchmarkMode.check(pipeline: pipeline)
        if let requestsPerConnection { try BenchmarkMode.check(requestsPerConnection: requestsPerConnection) }
        if let streamWindow { try BenchmarkMode.check(streamWindow: streamWindow) }
        if stream && (rate != nil || pipeline > 1 || requestsPerConnection != nil) {
            throw .invalidConfiguration("--stream excludes --rate, --pipeline and --requests-per-connection")
        }
        if requestsPerConnection != nil && (rate != nil || pipeline > 1) {
            throw .invalidConfiguration("--requests-per-connection excludes --rate and --pipeline")
        }
        if stream { return .stream(window: streamWindow ?? BenchmarkMode.defaultStreamWindow) }
        if let requestsPerConnection { return .churn(requestsPerConnection: requestsPerConnection) }
        if let rate {
            return .rate(.init(perSecond: rate, arrival: arrival ?? .uniform,
                               queueLimit: queueLimit ?? BenchmarkMode.Rate.defaultQueueLimit, inFlight: pipeline))
        }
        return pipeline > 1 ? .pipeline(depth: pipeline) : .pingPong
    }
}

/// The ranges of the modes' values, each with its one-line error.
extension BenchmarkMode {
    public static let rateRange = 0.001...100_000_000.0
    public static let queueLimitRange = 1...65536
    public static let pipelineRange = 1...4096
    public static let requestsPerConnectionRange = 1...1_000_000_000
    public static let streamWindowRange = 1...(1 << 30)

    static func check(rate: Double) throws(BenchmarkError) {
        guard rate.isFinite, rateRange.contains(rate) else {
            throw .invalidConfiguration("invalid rate \(rate): must be more than 0 and at most 100000000 requests/s")
        }
    }

    static func check(queueLimit: Int) throws(BenchmarkError) {
        guard queueLimitRange.contains(queueLimit) else {
            throw .invalidConfiguration("invalid queue limit \(queueLimit): must be 1...65536 requests")
        }
    }

    static func check(pipeline: Int) throws(BenchmarkError) {
        guard pipelineRange.contains(pipeline) else {
            throw .invalidConfiguration("invalid pipeline \(pipeline): must be 1...4096 requests")
        }
    }

    static func check(requestsPerConnection: Int) throws(BenchmarkError) {
        guard requestsPerConnectionRange.contains(requestsPerConnection) else {
            throw .invalidConfiguration("invalid requests per connection \(requestsPerConnection): must be 1...1000000000")
        }
    }

    static func check(streamWindow: Int) throws(BenchmarkError) {
        guard streamWindowRange.contains(streamWindow) else {
            throw .invalidConfiguration("invalid stream window \(streamWindow): must be 1...1073741824 bytes (1 GiB)")
        }
    }
}
