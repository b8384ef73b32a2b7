/// What one benchmark run does: where it connects, how many connections, how large each message
/// is, and how long it warms up and measures.
public struct BenchmarkConfiguration: Sendable, Equatable {
    /// The server's address: a numeric IPv4 or IPv6 address, or a host name.
    public var host: String = "127.0.0.1"
    /// The server's TCP port.
    public var port: Int = 6666
    /// Connections measured: persistent (churn: slots whose connection is replaced after its
    /// echoes).
    public var connections: Int = 50
    /// Bytes per message.
    public var length: Int = 128
    /// Seconds of the measured window.
    public var duration: Double = 10
    /// Seconds of traffic before the measured window, not counted.
    public var warmup: Double = 2
    /// Event loops, each on its own thread with its share of the connections.
    public var threads: Int = 1
    /// Seconds the connect phase may go without a single connection completing before the
    /// connections still pending are given up (counted as connect errors).
    public var connectTimeout: Double = 10
    /// A request outstanding for longer than this at the end of the window counts as stalled.
    /// `--rate` waits this long after the window for the requests due in it.
    public var stallThreshold: Double = 1

    /// The workload: ping-pong, pipeline, open loop, churn or stream, with its values.
    public var mode: BenchmarkMode = .pingPong
    /// Idle connections opened before the warm-up and held, silent, until the end.
    public var idle: Int = 0
    /// Idle connections one process holds at most; nil for what its descriptor limit allows.
    /// The rest go to helper processes (``helperExecutable`` run with `--idle-helper`).
    public var idlePerProcess: Int? = nil
    /// Idle connections per 127.0.0.x source address; nil to bind only when the connections to the
    /// server would exceed the local port range.
    public var idlePerSource: Int? = nil
    /// The `echo-bench` executable that helper processes run, when the idle connections need more
    /// than one process.
    public var helperExecutable: String? = nil

    public static let connectionRange = 1...1_000_000
    public static let lengthRange = 1...(16 << 20)
    public static let threadRange = 1...64
    public static let idleRange = 0...1_000_000

    public init() {}

    public init(host: String = "127.0.0.1", port: Int, connections: Int = 50, length: Int = 128,
                duration: Double = 10, warmup: Double = 2, threads: Int = 1) {
        self.host = host
        self.port = port
        self.connections = connections
        self.length = length
        self.duration = duration
        self.warmup = warmup
        self.threads = threads
    }

    /// Checks every value against its range.
    ///
    /// - Throws: ``BenchmarkError/invalidConfiguration(_:)`` naming the first value out of range.
    public func validate() throws(BenchmarkError) {
        guard !host.isEmpty else { throw .invalidConfiguration("invalid host: must not be empty") }
        guard (1...65535).contains(port) else {
            throw .invalidConfiguration("invalid port \(port): must be 1...65535")
        }
        guard Self.connectionRange.contains(connections) else {
            throw .invalidConfiguration("invalid connections \(connections): must be 1...1000000")
        }
        guard Self.lengthRange.contains(length) else {
            throw .invalidConfiguration("invalid length \(length): must be 1...16777216 bytes (16 MiB)")
        }
        guard duration.isFinite, duration > 0, duration <= 31_536_000 else {
            throw .invalidConfiguration("invalid duration \(duration): must be more than 0 seconds (at most a year)")
        }
        guard warmup.isFinite, warmup >= 0, warmup <= 31_536_000 else {
            throw .invalidConfiguration("invalid warmup \(warmup): must be 0 or more seconds (at most a year)")
        }
        guard Self.threadRange.contains(threads) else {
            throw .invalidConfiguration("invalid threads \(threads): must be 1...64")
        }
        guard threads <= connections else {
            throw .invalidConfiguration("invalid threads \(threads): must not exceed connections (\(connections))")
        }
        guard connectTimeout.isFinite, connectTimeout > 0, connectTimeout <= 3600 else {
            throw .invalidConfiguration("invalid connect timeout \(connectTimeout): must be more than 0 and at most 3600 seconds")
        }
        guard stallThreshold.isFinite, stallThreshold > 0 else {
            throw .invalidConfiguration("invalid stall threshold \(stallThreshold): must be more than 0 seconds")
        }
        try validateModes()
    }

    /// The connections loop `index` of ``threads`` serves: a contiguous range of identifiers.
    public func share(ofLoop index: Int) -> Range<Int> {
        let base = connections / threads
        let extra = connections % threads
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    /// `host:port`, with IPv6 addresses in brackets.
    public var endpoint: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
