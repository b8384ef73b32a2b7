extension BenchmarkConfiguration {
    /// Request times the loops keep at most, across all connections (8 bytes each: 1 GiB).
    static let ringEntryLimit = 1 << 27
    /// Source addresses idle connections may spread over: 127.0.0.2 onwards.
    public static let idleSourceLimit = 250

    /// Checks the mode's values against their ranges, and the request times it needs against
    /// ``ringEntryLimit``.
    func validateModes() throws(BenchmarkError) {
        try mode.validate()
        guard connections * mode.ringCapacity <= Self.ringEntryLimit else {
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
