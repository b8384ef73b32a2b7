import Backend
import CLibUring
import EchoSupport

/// io_uring through liburing: one thread per loop, one ring, and the kernel picking the buffer
/// each receive fills, so the loop never submits a poll and idle connections hold no buffer (in
/// the default mode).
///
/// The best design (``Mode/multishot`` with `DEFER_TASKRUN` and incremental consumption of 64 KiB
/// buffers, measured cheapest here; ``Options/negotiated(mode:sqpoll:on:)`` finds the best one a
/// kernel offers) keeps one multishot accept armed and one multishot receive per
/// connection on a provided-buffer ring; received bytes are sent straight from the buffer, several
/// slices per `sendmsg`, and a buffer returns to the ring with no submission once its bytes are sent, so an echo costs about one submission (the send) and a whole turn of completions one
/// `io_uring_submit_and_wait`. ``Mode/legacy`` is the classic design kept as the baseline;
/// ``Mode/bundle`` adds receive bundles on a buffer ring per connection. All three run on one
/// loop (``LoopDriver``) and differ only in their ``LoopMode``.
public struct URingBackend: EventBackend {
    public static let name = "uring"

    /// How the loop drives io_uring.
    public enum Mode: String, Sendable, CaseIterable {
        /// The classic design: single-shot accept and receive, `IORING_OP_PROVIDE_BUFFERS`, three
        /// submissions per echo. The baseline, and the default on kernels before 6.0.
        case legacy
        /// Multishot accept, multishot receive from a provided-buffer ring, buffers recycled into
        /// the ring without a submission: about one submission per echo (the send).
        case multishot
        /// Multishot with receive bundles, `IORING_RECVSEND_BUNDLE` (Linux 6.10): every connection
        /// gets a buffer ring of its own (``ConnectionBufferRing``), one receive completion may fill
        /// several of its buffers, and sends gather them into one `sendmsg`. Streams gain; each open
        /// connection holds its own buffers, idle or not.
        case bundle
    }

    /// How `--splice` moves bytes socket → pipe → socket (see ``SpliceMode``); both are kept so
    /// they can be measured against each other.
    public enum SpliceStrategy: String, Sendable, CaseIterable {
        /// A poll through the ring, then a hard-linked pair of `IORING_OP_SPLICE` requests. The
        /// kernel runs every splice in an io-wq worker thread: no system call, a thread hand-off each.
        case linked
        /// A multishot poll through the ring, then `splice(2)` from the loop, as epoll does: two
        /// system calls per direction, no hand-off.
        case poll
    }

    /// What the io_uring loop is sized and switched with.
    public struct Options: Sendable, Equatable {
        /// The loop's design. The default is the one measured cheapest here (see the README's
        /// "what each io_uring feature buys" and "streams"): multishot with `DEFER_TASKRUN` and
        /// incremental consumption of 64 KiB buffers, which needs Linux 6.12; for another kernel,
        /// ``negotiated(mode:sqpoll:on:)``.
        public var mode: Mode
        /// Size of each buffer in the shared pool: the most one receive reads. Default: 64 KiB in
        /// multishot mode (with incremental consumption, a receive takes only what it needs);
        /// 4 KiB in legacy and bundle modes, where every receive takes a whole buffer.
        public var bufferSize: Int
        /// Number of buffers in the shared pool (the kernel numbers them with 16 bits). Default:
        /// 16 MiB in all, 256 × 64 KiB or 4096 × 4 KiB (bundle mode: 8 per connection instead).
        public var bufferCount: Int
        /// Submission queue entries.
        public var ringEntries: Int = 1024
        /// Completion queue entries: generous, so a burst of completions from tens of thousands of
        /// connections does not wait in the kernel's overflow list (clamped to the kernel's maximum).
        public var completionQueueEntries: Int = 65536
        /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (Linux 6.1): completions are
        /// processed only when the loop waits for them, in one batch, on the loop's own thread.
        /// Default: on, except in legacy mode (the classic design) and with `sqpoll` (the kernel
        /// refuses the two together).
        public var deferTaskrun: Bool
        /// `IORING_SETUP_COOP_TASKRUN` (Linux 5.19): the kernel does not interrupt the loop to run
        /// completion work; it runs when the loop next enters the kernel. For kernels without
        /// `DEFER_TASKRUN`, which does more of the same (the two are not combined here).
        public var coopTaskrun = false
        /// `IORING_SETUP_SQPOLL`: a kernel thread polls the submission queue.
        public var sqpoll: Bool
        /// Direct descriptors from the multishot accept into a sparse registered file table
        /// (multishot mode only).
        public var fixedFiles = false
        /// Sends of at least this many bytes use `IORING_OP_SEND_ZC` (0: never; multishot mode only).
        public var zeroCopyThreshold = 0
        /// `IOU_PBUF_RING_INC` (Linux 6.12) on the shared ring: a receive takes only the bytes that
        /// are ready from the head buffer and the next continues after them, so large buffers serve
        /// small messages without a buffer each (multishot mode only; its default).
        public var incrementalBuffers: Bool
        /// `IORING_SETUP_SUBMIT_ALL` (Linux 5.18): a submission that fails does not stop the kernel
        /// from taking the ones queued after it. Without it (older kernels), entries can stay in the
        /// queue after a turn, which the loop allows for. Set by the negotiation.
        public var submitAll = true
        /// Echo through pipes with `splice` instead of buffers (``SpliceMode``), and how; nil: off.
        /// The buffer options and ``mode`` do not apply then.
        public var splice: SpliceStrategy?
        /// With ``splice``: the capacity asked of each pipe (`F_SETPIPE_SZ`;
        /// ``PipePool/pipeSizeRange``, default ``PipePool/defaultPipeSize``).
        public var pipeSize = PipePool.defaultPipeSize
        /// With ``splice``: the most pipes open at once per loop (two descriptors each); a
        /// connection that finds none is served by copying (default ``PipePool/defaultLimit``).
        public var pipeLimit = PipePool.defaultLimit
        /// Tests only: a trigger that makes the ring fail (see ``RingFaultInjection``).
        var faultInjection: RingFaultInjection?
        /// Tests only: queue an invalid submission every turn, which stops the kernel's submission
        /// there when ``submitAll`` is off (a partial submit, as older kernels meet it).
        var injectsInvalidSubmission = false

        /// The defaults of `mode` (with or without `sqpoll`): the options below, with the buffers
        /// that mode is measured best with.
        public init(mode: Mode = .multishot, sqpoll: Bool = false) {
            self.mode = mode
            self.sqpoll = sqpoll
            deferTaskrun = mode != .legacy && !sqpoll
            switch mode {
            case .multishot:
                bufferSize = 65536
                bufferCount = 256
                incrementalBuffers = true
            case .legacy, .bundle:
                bufferSize = 4096
                bufferCount = 4096
                incrementalBuffers = false
            }
        }

        /// The classic design and nothing newer: legacy mode (without `DEFER_TASKRUN`).
        public static var legacy: Options { Options(mode: .legacy) }

        static let bufferSizeRange = 64...(1 << 20)
        static let bufferCountRange = 1...32768
        static let ringEntriesRange = 2...32768
        static let completionEntriesRange = 4...(1 << 20)

        /// The `io_uring_setup` parameters these options ask for.
        var setupParameters: io_uring_params {
            var parameters = io_uring_params()
            parameters.flags = UInt32(IORING_SETUP_CQSIZE) | UInt32(IORING_SETUP_CLAMP)
            parameters.cq_entries = UInt32(max(completionQueueEntries, ringEntries))
            if submitAll { parameters.flags |= UInt32(IORING_SETUP_SUBMIT_ALL) }
            if deferTaskrun {
                parameters.flags |= UInt32(IORING_SETUP_SINGLE_ISSUER) | UInt32(IORING_SETUP_DEFER_TASKRUN)
            }
            if coopTaskrun { parameters.flags |= UInt32(IORING_SETUP_COOP_TASKRUN) }
            if sqpoll {
                parameters.flags |= UInt32(IORING_SETUP_SQPOLL)
                parameters.sq_thread_idle = 1000
            }
            return parameters
        }
    }

    public var options: Options

    public init(options: Options = .init()) {
        self.options = options
    }

    public var summary: String {
        if let splice = options.splice {
            var parts = ["io_uring splice (\(splice.rawValue)) through \(options.pipeSize)-byte pipes (at most \(options.pipeLimit))"]
            if options.deferTaskrun { parts.append("defer-taskrun") }
            if options.coopTaskrun { parts.append("coop-taskrun") }
            parts.append("\(options.ringEntries) SQ / \(options.completionQueueEntries) CQ entries")
            return parts.joined(separator: ", ")
        }
        var parts = ["io_uring \(options.mode.rawValue)"]
        if options.deferTaskrun { parts.append("defer-taskrun") }
        if options.coopTaskrun { parts.append("coop-taskrun") }
        if options.sqpoll { parts.append("sqpoll") }
        if options.fixedFiles { parts.append("fixed files") }
        if options.zeroCopyThreshold > 0 { parts.append("zero-copy sends from \(options.zeroCopyThreshold) B") }
        if options.incrementalBuffers { parts.append("incremental buffer consumption") }
        if options.mode == .bundle {
            parts.append("recv bundles, \(ConnectionBufferRing.count) × \(options.bufferSize)-byte buffers per connection")
        } else {
            parts.append("\(options.bufferCount) × \(options.bufferSize)-byte buffers")
        }
        parts.append("\(options.ringEntries) SQ / \(options.completionQueueEntries) CQ entries")
        return parts.joined(separator: ", ")
    }

    /// Checks the options, then that io_uring can be set up here with every feature they need.
    public func validate() throws(EchoError) {
        try validateOptions()
        try KernelSupport.check(options)
    }

    /// Checks each option's range and that the options go together.
    func validateOptions() throws(EchoError) {
        if options.splice != nil {
            try PipePool.validate(size: options.pipeSize, limit: options.pipeLimit)
            if options.sqpoll || options.fixedFiles || options.zeroCopyThreshold > 0 {
                throw .invalidConfiguration("--splice cannot be combined with --sqpoll, --fixed-files or --zerocopy-send")
            }
        }
        guard Options.bufferSizeRange.contains(options.bufferSize) else {
            throw .invalidConfiguration("invalid buffer size \(options.bufferSize): must be 64...1048576 bytes")
        }
        guard Options.bufferCountRange.contains(options.bufferCount) else {
            throw .invalidConfiguration("invalid buffer count \(options.bufferCount): must be 1...32768")
        }
        guard Options.ringEntriesRange.contains(options.ringEntries) else {
            throw .invalidConfiguration("invalid ring entries \(options.ringEntries): must be 2...32768")
        }
        guard Options.completionEntriesRange.contains(options.completionQueueEntries) else {
            throw .invalidConfiguration("invalid CQ entries \(options.completionQueueEntries): must be 4...1048576")
        }
        guard options.bufferSize * options.bufferCount <= 1 << 30 else {
            throw .invalidConfiguration("buffer pool too large: buffer size × buffer count must be at most 1 GiB")
        }
        guard options.zeroCopyThreshold >= 0 else {
            throw .invalidConfiguration("invalid zero-copy threshold \(options.zeroCopyThreshold): must be 0 (off) or more bytes")
        }
        if options.coopTaskrun && options.deferTaskrun {
            throw .invalidConfiguration("--coop-taskrun applies with --no-defer-taskrun (DEFER_TASKRUN already runs completion work only when the loop waits)")
        }
        if options.sqpoll && options.deferTaskrun {
            throw .invalidConfiguration("--sqpoll and --defer-taskrun cannot be combined (the kernel refuses DEFER_TASKRUN with SQPOLL)")
        }
        if options.mode != .multishot && (options.fixedFiles || options.zeroCopyThreshold > 0 || options.incrementalBuffers) {
            throw .invalidConfiguration("--fixed-files, --zerocopy-send and --incremental-buffers need --uring-mode multishot")
        }
    }

    public func run(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics,
                    limits: ServerLimits) throws(EchoError) {
        if options.splice != nil {
            try LoopDriver<SpliceMode>.serve(options: options, listener: listener, stop: stop, statistics: statistics,
                                             limits: limits)
            return
        }
        switch options.mode {
        case .legacy:
            try LoopDriver<LegacyMode>.serve(options: options, listener: listener, stop: stop, statistics: statistics,
                                                   limits: limits)
        case .multishot:
            try LoopDriver<MultishotMode>.serve(options: options, listener: listener, stop: stop, statistics: statistics,
                                                   limits: limits)
        case .bundle:
            try LoopDriver<BundleMode>.serve(options: options, listener: listener, stop: stop, statistics: statistics,
                                                   limits: limits)
        }
    }
}
