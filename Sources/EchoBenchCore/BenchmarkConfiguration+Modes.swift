extension BenchmarkConfiguration {
    /// Request times the loops keep at most, across all connections (8 bytes each: 1 GiB).
    static let ringEntryLimit = 1 << 27
    /// Source addresses idle connections may spread over: 127.0.0.2 onwards.
    public static let idleSourceLimit = 250

    /// The workload the options ask for.
    public var mode: BenchmarkMode {
        if stream { return .stream }
        if requestsPerConnection != nil { return .churn }
        if rate != nil { return .rate }
        return pipeline > 1 ? .pipeline : .pingpong
    }

    /// Request times each connection keeps: a power of two, at least the requests it may have
    /// issued and not had back (in flight, and queued with `--rate`); stream mode keeps that many
    /// latency samples.
    var ringCapacity: Int {
        switch mode {
        case .stream: return ClientLoop.streamSamples
        case .rate: return (pipeline + queueLimit).nextPowerOfTwo
        case .pingpong, .pipeline, .churn: return pipeline.nextPowerOfTwo
        }
    }

    /// The share of `rate` loop `index` schedules.
    func rate(ofLoop index: Int) -> Double {
        (rate ?? 0) * Double(share(ofLoop: index).count) / Double(connections)
    }

    /// Checks the mode options against their ranges and each other.
    func validateModes() throws(BenchmarkError) {
        if let rate {
            guard rate.isFinite, Self.rateRange.contains(rate) else {
                throw .invalidConfiguration("invalid rate \(rate): must be more than 0 and at most 100000000 requests/s")
            }
        }
        guard Self.queueLimitRange.contains(queueLimit) else {
            throw .invalidConfiguration("invalid queue limit \(queueLimit): must be 1...65536 requests")
        }
        guard Self.pipelineRange.contains(pipeline) else {
            throw .invalidConfiguration("invalid pipeline \(pipeline): must be 1...4096 requests")
        }
        if let requestsPerConnection, !Self.requestsPerConnectionRange.contains(requestsPerConnection) {
            throw .invalidConfiguration("invalid requests per connection \(requestsPerConnection): must be 1...1000000000")
        }
        guard Self.streamWindowRange.contains(streamWindow) else {
            throw .invalidConfiguration("invalid stream window \(streamWindow): must be 1...1073741824 bytes (1 GiB)")
        }
        if stream && (rate != nil || pipeline > 1 || requestsPerConnection != nil) {
            throw .invalidConfiguration("--stream excludes --rate, --pipeline and --requests-per-connection")
        }
        if requestsPerConnection != nil && (rate != nil || pipeline > 1) {
            throw .invalidConfiguration("--requests-per-connection excludes --rate and --pipeline")
        }
        guard connections * ringCapacity <= Self.ringEntryLimit else {
            throw .invalidConfiguration("too many requests in flight: --connections × (--pipeline + --queue-limit) "
                + "must stay under \(Self.ringEntryLimit) (1 GiB of request times)")
        }
        try validateIdle()
    }

    /// Checks `--idle` and its companions.
    private func validateIdle() throws(BenchmarkError) {
        guard Self.idleRange.contains(idle) else {
            throw .invalidConfiguration("invalid idle \(idle): must be 0...1000000 connections")
        }
        if let idlePerProcess, idlePerProcess < 1 {
            throw .invalidConfiguration("invalid idle per process \(idlePerProcess): must be at least 1")
        }
        if let idlePerSource {
            guard idlePerSource >= 1, idle <= idlePerSource * Self.idleSourceLimit else {
                throw .invalidConfiguration("invalid idle per source \(idlePerSource): must be at least 1, "
                    + "and --idle at most \(Self.idleSourceLimit) times it")
            }
        }
    }
}

extension Int {
    /// The smallest power of two at least `self` (1 for 0 or less).
    var nextPowerOfTwo: Int {
        self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount)
    }
}
