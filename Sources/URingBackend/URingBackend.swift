import Backend

/// io_uring through liburing, in the design of the reference C server: no explicit poll requests
/// (the kernel's fast poll arms them internally) and kernel buffer selection from one shared pool.
///
/// Each connection has exactly one request in flight at any time: a `recv` that lets the kernel
/// pick a buffer from the pool, then a `send` of that buffer (resubmitted until every byte is
/// gone), then the buffer goes back to the pool with `IORING_OP_PROVIDE_BUFFERS` in the same
/// submission as the next `recv`. The loop drains every ready completion, then makes one
/// `io_uring_submit_and_wait` call per turn.
public struct URingBackend: EventBackend {
    public static let name = "uring"

    /// What the io_uring loop is sized with.
    public struct Options: Sendable, Equatable {
        /// Size of each buffer in the shared pool: the most one `recv` reads.
        public var bufferSize: Int = 4096
        /// Number of buffers in the shared pool (the kernel numbers them with 16 bits).
        public var bufferCount: Int = 4096
        /// Submission queue entries. The completion queue is sized much larger (see ``completionQueueEntries``).
        public var ringEntries: Int = 1024

        public init() {}

        /// Completion queue entries: generous, so that a burst of completions from tens of
        /// thousands of connections does not have to wait in the kernel's overflow list.
        public var completionQueueEntries: Int { max(ringEntries * 4, 65536) }

        static let bufferSizeRange = 64...(1 << 20)
        static let bufferCountRange = 1...32768
        static let ringEntriesRange = 2...32768
    }

    public var options: Options

    public init(options: Options = .init()) {
        self.options = options
    }

    public var summary: String {
        "io_uring, fast poll + provided buffers, \(options.bufferCount) × \(options.bufferSize)-byte buffers, "
            + "\(options.ringEntries) SQ entries"
    }

    /// Checks the options, then that io_uring can be set up here and has every feature this
    /// design needs: `IORING_FEAT_FAST_POLL`, `IORING_FEAT_NODROP` and the opcodes it submits.
    public func validate() throws(EchoError) {
        guard Options.bufferSizeRange.contains(options.bufferSize) else {
            throw .invalidConfiguration("invalid buffer size \(options.bufferSize): must be 64...1048576 bytes")
        }
        guard Options.bufferCountRange.contains(options.bufferCount) else {
            throw .invalidConfiguration("invalid buffer count \(options.bufferCount): must be 1...32768")
        }
        guard Options.ringEntriesRange.contains(options.ringEntries) else {
            throw .invalidConfiguration("invalid ring entries \(options.ringEntries): must be 2...32768")
        }
        guard options.bufferSize * options.bufferCount <= 1 << 30 else {
            throw .invalidConfiguration("buffer pool too large: buffer size × buffer count must be at most 1 GiB")
        }
        try KernelSupport.check()
    }

    public func run(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics) throws(EchoError) {
        try validate()
        let loop = try URingLoop(options: options, listener: listener, stop: stop, statistics: statistics)
        defer { loop.close() }
        try loop.run()
    }
}
