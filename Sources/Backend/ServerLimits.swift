import EchoSupport
/// How long a connection may stay silent and how many may be open: `--idle-timeout` and
/// `--max-connections`, the same on every backend.
public struct ServerLimits: Sendable, Equatable {
    /// What happens to a connection that arrives at the cap.
    public enum OverLimit: String, Sendable, CaseIterable {
        /// Stop accepting: newcomers wait in the listen backlog until a connection closes.
        case pause
        /// Accept and close at once, counted in ``ServerStatistics/Counter/acceptsRefused``.
        case close
    }

    /// Close a connection that has received no byte, and sent none its peer took, for this many
    /// nanoseconds (nil: never). Checked every tenth of it, so a silent connection is closed
    /// between the timeout and 1.1 times it.
    public var idleTimeoutNanoseconds: UInt64?
    /// The most connections open at once (nil: no limit). With several loops, each takes its share.
    public var maxConnections: Int?
    /// What a connection over the cap meets.
    public var overLimit = OverLimit.pause

    /// No limits.
    public init() {}

    /// The shortest and longest idle timeouts accepted, in seconds.
    public static let idleTimeoutRange = 0.01...86_400.0
    /// The ticks an idle timeout is checked in: it is closed after more than this many silent ticks.
    public static let ticksPerTimeout: UInt32 = 10

    /// The tick of the idle check: a tenth of the timeout, or nil without one.
    public var tickNanoseconds: UInt64? {
        idleTimeoutNanoseconds.map { max($0 / UInt64(Self.ticksPerTimeout), 1_000_000) }
    }

    /// The limits loop `index` of `loops` enforces: the cap split as evenly as whole connections
    /// allow (the kernel spreads connections over `SO_REUSEPORT` listeners by hash, not by load).
    public func share(loop index: Int, of loops: Int) -> ServerLimits {
        guard let maxConnections, loops > 1 else { return self }
        var share = self
        share.maxConnections = maxConnections / loops + (index < maxConnections % loops ? 1 : 0)
        return share
    }

    /// Checks the values.
    public func validate(loops: Int) throws(EchoError) {
        if let idleTimeoutNanoseconds {
            let seconds = Double(idleTimeoutNanoseconds) / 1e9
            guard Self.idleTimeoutRange.contains(seconds) else {
                throw .invalidConfiguration("invalid idle timeout \(seconds) s: must be 0.01...86400 seconds")
            }
        }
        if let maxConnections {
            guard maxConnections >= max(loops, 1) else {
                throw .invalidConfiguration("invalid connection cap \(maxConnections): must be at least 1"
                    + (loops > 1 ? " per loop (\(loops) loops)" : ""))
            }
        }
    }
}
