#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Backend
import BlockingBackend
import EpollBackend
import URingBackend
import EchoSupport

/// `echo`: a TCP echo server with a choice of event backend.
public struct EchoCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "A TCP echo server on io_uring, epoll or plain blocking sockets.",
        discussion: """
            Every byte a client sends is written back to it until the client closes its \
            side. The server runs until SIGINT or SIGTERM, then closes every connection \
            and prints what it did: connections, requests, bytes, and the system calls \
            it made, in total and per request. Bad options exit with status 64, any \
            other error with status 1.

            Backends (--backend):
              uring     io_uring through liburing. Receives land in buffers the
                        kernel picks from one shared pool (--buffer-count
                        buffers of --buffer-size bytes), so idle connections
                        hold no buffer (except with --uring-mode bundle), and
                        a whole batch of receives and sends costs one
                        io_uring_enter call. Needs io_uring enabled in the
                        kernel; where it is not, use --backend epoll.
              epoll     One thread, non-blocking sockets, level-triggered
                        epoll: one epoll_wait per batch of ready sockets, then
                        a read and a send per request.
              blocking  The textbook server: blocking accept, read and send.
                        --blocking-mode naive serves one client at a time (the
                        others wait in the listen backlog); --blocking-mode
                        threaded starts one thread per connection.

            Limits (every backend): --idle-timeout closes a connection that has received \
            no byte, and whose peer has taken none of its echo, for that many seconds \
            (checked every tenth of it, so it closes between the timeout and 1.1 times \
            it). --max-connections caps the connections open at once: at the cap the \
            server stops accepting and newcomers wait in the listen backlog until one \
            closes, or with --over-limit close it accepts and closes them at once. Open \
            connections are never disturbed. With --threads, each loop takes its share \
            of the cap. On uring, a pausing cap accepts one connection per request \
            instead of a multishot accept, so it stops exactly at the cap.

            Statistics for scripts (--stats-json PATH): the server writes its counters \
            as one JSON object to PATH once it listens, each time it receives SIGUSR1, \
            and at stop; each write goes to PATH.tmp and is renamed over PATH, so \
            readers never see half a file. Keys: backend, summary, pid, reason \
            (start, signal or stop), sample, unix_ns, uptime_s, connections_open, \
            \(ServerStatistics.Counter.allCases.filter { $0.group != .syscalls }.map(\.key).joined(separator: ", ")), \
            syscalls {\(ServerStatistics.Counter.syscalls.map(\.key).joined(separator: ", ")), total} \
            and cpu {user_s, system_s}. To sample a window: remove PATH, send SIGUSR1, \
            wait for PATH to reappear; twice, and subtract. Without --stats-json, \
            SIGUSR1 is ignored.

            Counters (the final report and --stats-json):
            \(ServerStatistics.Counter.allCases.map { "  " + $0.key.padding(22) + $0.meaning }.joined(separator: "\n"))

            io_uring modes (--uring-mode): legacy is the classic design (single-shot \
            accept and recv, IORING_OP_PROVIDE_BUFFERS: three submissions per echo); \
            multishot keeps one multishot accept and one multishot recv per connection \
            armed on a provided-buffer ring, sends each connection's received bytes at \
            the end of the loop's turn (several at once with one sendmsg) and recycles \
            each buffer into the ring with no submission once its bytes are sent. Its \
            ring consumes buffers incrementally (Linux 6.12; --no-incremental-buffers \
            turns it off): a receive takes only the bytes that are ready from a 64 KiB \
            buffer, so small messages share buffers and streams move 64 KiB per call. \
            bundle (Linux 6.10; --bundle is the same) is multishot with receive bundles: \
            every connection gets a buffer ring of its own (8 buffers of --buffer-size \
            bytes, held while the connection is open, idle or not; --buffer-count does \
            not apply) and receives with IORING_RECVSEND_BUNDLE (one completion may fill \
            several buffers). --defer-taskrun, --incremental-buffers, --sqpoll, \
            --fixed-files and --zerocopy-send switch on one kernel feature each, so its \
            worth can be measured.

            Kernels: the default is negotiated with the running kernel, which is probed \
            at start by trying each feature. Best first: multishot with --defer-taskrun \
            and incremental 64 KiB buffers (Linux 6.12); multishot with --defer-taskrun \
            and the same buffers taken whole (6.1); multishot with \
            --coop-taskrun (6.0); legacy (5.7). The start line names the design chosen and each feature \
            left out with the release that brings it. Only what you leave open is \
            negotiated: a mode or feature flag you give is a requirement, and a kernel \
            without it is an error naming the feature and its release. Where io_uring \
            cannot be set up at all (not built in, kernel.io_uring_disabled, a seccomp \
            filter such as Docker's default) the error says why; use --backend epoll. \
            --features prints the feature table (--json for scripts); --check says \
            whether the options can serve here, and with what, without listening.

            Named configurations: --list-variants prints the server configurations the \
            benchmark kit runs (benchmarks/run --backends), each a name and the flags \
            that select it; with --json, also a line on each and the configuration an \
            ablation step adds one feature to. The kit loads them from that JSON \
            (benchmarks/benchkit/variants.json).

            --buffer-size applies to every backend; --buffer-count, --ring-entries, \
            --cq-entries and the io_uring switches only to uring; --epoll-mode and \
            --max-events only to epoll; --blocking-mode only to blocking. --threads runs \
            that many loops, each with its own SO_REUSEPORT listener and ring or epoll \
            instance (--pin pins loop i to CPU i).

            The executable shares its name with the shell's built-in echo: run it by \
            path (.build/release/echo) or through 'swift run echo'.
            """
    )

    @Option(help: "The event backend.")
    var backend: BackendChoice = .uring

    @Option(help: "The address to listen on: an IPv4 or IPv6 address or a host name.")
    var host: String = "0.0.0.0"

    @Option(parsing: .unconditional, help: "The TCP port to listen on (1-65535).")
    var port: Int = 6666

    @Option(parsing: .unconditional, help: "The listen backlog: connections the kernel queues before they are accepted.")
    var backlog: Int = Int(EchoServer.defaultBacklog)

    @Option(parsing: .unconditional, help: ArgumentHelp("Bytes read at once: the size of each pooled buffer (uring; default \(URingBackend.Options(mode: .multishot).bufferSize) in multishot mode, \(URingBackend.Options(mode: .legacy).bufferSize) in the others), the loop's read buffer (epoll; default \(EpollBackend.Options().bufferSize)), or each connection's buffer (blocking; default \(BlockingBackend.Options().bufferSize)).", valueName: "bytes"))
    var bufferSize: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Buffers in uring's shared provided-buffer pool (default \(URingBackend.Options(mode: .multishot).bufferCount) in multishot mode, \(URingBackend.Options(mode: .legacy).bufferCount) in legacy mode).", valueName: "count"))
    var bufferCount: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Submission queue entries of uring's ring (default \(URingBackend.Options().ringEntries)).", valueName: "entries"))
    var ringEntries: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Completion queue entries of uring's ring (default \(URingBackend.Options().completionQueueEntries)).", valueName: "entries"))
    var cqEntries: Int?

    @Option(help: "How the uring backend drives io_uring (see below). Default: the best this kernel offers.")
    var uringMode: URingBackend.Mode?

    @Flag(inversion: .prefixedNo, help: "uring: IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (Linux 6.1): completions are processed only when the loop waits. Default: on in multishot and bundle modes without --sqpoll, off otherwise.")
    var deferTaskrun: Bool?

    @Flag(inversion: .prefixedNo, help: "uring: IORING_SETUP_COOP_TASKRUN (Linux 5.19): completion work waits until the loop enters the kernel, with no interrupt. Applies without --defer-taskrun. Default: off.")
    var coopTaskrun: Bool?

    @Flag(help: "uring: IORING_SETUP_SQPOLL: a kernel thread polls the submission queue.")
    var sqpoll = false

    @Flag(help: "uring multishot: accept into direct descriptors (a sparse registered file table). Needs Linux 6.13, which lets go of a closed one at once.")
    var fixedFiles = false

    @Option(parsing: .unconditional, help: ArgumentHelp("uring multishot: send messages of at least this many bytes with IORING_OP_SEND_ZC (0: never).", valueName: "bytes"))
    var zerocopySend: Int = 0

    @Flag(inversion: .prefixedNo, help: "uring multishot: IOU_PBUF_RING_INC (Linux 6.12): receives take only the bytes that are ready from the head buffer of the shared ring, and the next receive continues in it. Default: on in multishot mode.")
    var incrementalBuffers: Bool?

    @Flag(help: "uring: the same as --uring-mode bundle (receive bundles on a buffer ring per connection; see below).")
    var bundle = false

    @Option(help: "epoll: level- or edge-triggered readiness.")
    var epollMode: EpollBackend.Trigger = EpollBackend.Options().trigger

    @Flag(help: "epoll and uring: echo through a pipe with splice(2), copying nothing into user space. For streams: a small message pays two system calls per direction either way, so it gains nothing. Connections hold a pipe only while bytes are in it. Each pipe takes two descriptors, which --max-connections does not count: a loop's pipes have a bound of their own, and with none free a connection is served by copying.")
    var splice = false

    @Option(help: "uring with --splice: 'poll' (a multishot poll through the ring, splice(2) from the loop) or 'linked' (hard-linked IORING_OP_SPLICE pairs, run by the kernel in io-wq threads). Default: poll.")
    var spliceMode: URingBackend.SpliceStrategy?

    @Option(parsing: .unconditional, help: ArgumentHelp("With --splice: the capacity of each pipe, the most one splice moves (\(PipePool.defaultPipeSize) by default; \(PipePool.pipeSizeRange.lowerBound)-\(PipePool.pipeSizeRange.upperBound)).", valueName: "bytes"))
    var pipeSize: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("epoll: events taken per epoll_wait (default \(EpollBackend.Options().maxEvents)).", valueName: "count"))
    var maxEvents: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Event loops to run (uring and epoll), each with its own SO_REUSEPORT listener.", valueName: "count"))
    var threads: Int = 1

    @Flag(help: "Pin event loop i to CPU i; echo does not start if the kernel refuses a pin.")
    var pin = false

    @Option(help: "How the blocking backend serves clients: one at a time, or one thread per connection.")
    var blockingMode: BlockingBackend.Mode = BlockingBackend.Options().mode

    @Option(parsing: .unconditional, help: ArgumentHelp("Close a connection silent for this many seconds: no byte received, none of its echo taken (\(ServerLimits.idleTimeoutRange.lowerBound)-\(Int(ServerLimits.idleTimeoutRange.upperBound)); default: never).", valueName: "seconds"))
    var idleTimeout: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("The most connections open at once (default: no limit; see --over-limit).", valueName: "count"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("What a connection over --max-connections meets: pause (it waits in the listen backlog until one closes; the default) or close (accepted and closed at once, counted).", valueName: "policy"))
    var overLimit: ServerLimits.OverLimit?

    @Option(parsing: .unconditional, help: ArgumentHelp("Print connections open, requests/s and MiB/s in and out every this many seconds (0: never).", valueName: "seconds"))
    var statsInterval: Double = 0

    @Option(help: ArgumentHelp("Write statistics as JSON to this file when listening, on each SIGUSR1, and at stop (see below).", valueName: "path"))
    var statsJson: String?

    @Flag(help: "Print nothing when starting and stopping.")
    var quiet = false

    @Flag(help: "Print the io_uring features this project knows: whether this kernel has each (probed), the release that brought it, and whether the default uses it; then exit.")
    var features = false

    @Flag(help: "With --features or --list-variants: print one JSON object instead of the table.")
    var json = false

    @Flag(help: "Print the named server configurations the benchmark kit runs (its built-in variants): each name with its flags, and with --json its one-line description and ablation parent; then exit.")
    var listVariants = false

    @Flag(help: "Check the options against this kernel and print what the server would run, without listening; exit 0 when it can serve, 1 with the reason when it cannot.")
    var check = false

    public init() {}

    public func validate() throws {
        guard (1...65535).contains(port) else {
            throw ValidationError("invalid port \(port): must be 1...65535")
        }
        guard (1...Int(Int32.max)).contains(backlog) else {
            throw ValidationError("invalid backlog \(backlog): must be at least 1")
        }
        if let bufferSize, bufferSize <= 0 {
            throw ValidationError("invalid buffer size \(bufferSize): must be at least 1 byte")
        }
        if let bufferCount, bufferCount <= 0 {
            throw ValidationError("invalid buffer count \(bufferCount): must be at least 1")
        }
        if let ringEntries, ringEntries <= 0 {
            throw ValidationError("invalid ring entries \(ringEntries): must be at least 1")
        }
        if let cqEntries, cqEntries <= 0 {
            throw ValidationError("invalid CQ entries \(cqEntries): must be at least 1")
        }
        if let maxEvents, maxEvents <= 0 {
            throw ValidationError("invalid max events \(maxEvents): must be at least 1")
        }
        if let idleTimeout, !(idleTimeout.isFinite && ServerLimits.idleTimeoutRange.contains(idleTimeout)) {
            throw ValidationError("invalid idle timeout \(idleTimeout): must be \(ServerLimits.idleTimeoutRange.lowerBound)...\(Int(ServerLimits.idleTimeoutRange.upperBound)) seconds")
        }
        if overLimit != nil && maxConnections == nil {
            throw ValidationError("--over-limit applies with --max-connections")
        }
        guard (1...1024).contains(threads) else {
            throw ValidationError("invalid thread count \(threads): must be 1...1024")
        }
        if threads > 1 && backend == .blocking {
            throw ValidationError("--threads applies to the uring and epoll backends (blocking has --blocking-mode threaded)")
        }
        guard statsInterval.isFinite, statsInterval == 0 || (0.01...86_400).contains(statsInterval) else {
            throw ValidationError("invalid stats interval \(statsInterval): must be 0 (off) or 0.01...86400 seconds")
        }
        if let statsJson, statsJson.isEmpty || statsJson.hasSuffix("/") {
            throw ValidationError("invalid stats JSON path '\(statsJson)': must name a file")
        }
        if (splice || pipeSize != nil || spliceMode != nil) && backend == .blocking {
            throw ValidationError("--splice, --splice-mode and --pipe-size apply to --backend epoll and uring")
        }
        if (pipeSize != nil || spliceMode != nil) && !splice {
            throw ValidationError("--pipe-size and --splice-mode apply with --splice")
        }
        if spliceMode != nil && backend != .uring {
            throw ValidationError("--splice-mode applies to --backend uring")
        }
        if splice && backend == .uring && (uringMode != nil || bundle || bufferSize != nil || bufferCount != nil
                                           || incrementalBuffers != nil || fixedFiles || zerocopySend > 0 || sqpoll) {
            throw ValidationError("uring --splice runs a loop of its own, with pipes for buffers: it cannot be combined "
                + "with --uring-mode, --bundle, --buffer-size, --buffer-count, --incremental-buffers, --fixed-files, "
                + "--zerocopy-send or --sqpoll")
        }
        if json && !(features || listVariants) {
            throw ValidationError("--json applies with --features or --list-variants")
        }
        if bundle && uringMode == .legacy {
            throw ValidationError("--bundle is --uring-mode bundle: it cannot be combined with --uring-mode legacy")
        }
    }

    /// The io_uring mode: `--uring-mode`, or bundle with `--bundle` (which a benchmark may give
    /// together with `--uring-mode multishot`, as before bundle was a mode of its own).
    var resolvedURingMode: URingBackend.Mode? {
        bundle ? .bundle : uringMode
    }

    /// The idle timeout and the connection cap the options ask for.
    var limits: ServerLimits {
        var limits = ServerLimits()
        limits.idleTimeoutNanoseconds = idleTimeout.map { UInt64(($0 * 1e9).rounded()) }
        limits.maxConnections = maxConnections
        limits.overLimit = overLimit ?? limits.overLimit
        return limits
    }

    /// The backend and options the flags describe, and for uring what the negotiation with
    /// `kernel` left out. Options the user gives are requirements; the rest are negotiated.
    /// Each option is set on one line here and rendered back on one line of its backend's
    /// `Options.arguments`; `ConfigurationTests` checks that the two agree.
    func setup(on kernel: URingFeatures) -> (setup: ServerSetup, negotiation: URingBackend.Negotiation?) {
        switch backend {
        case .uring:
            var negotiation = URingBackend.Options.negotiated(mode: resolvedURingMode, sqpoll: sqpoll,
                                                              on: kernel)
            var options = negotiation.options
            options.bufferSize = bufferSize ?? options.bufferSize
            options.bufferCount = bufferCount ?? options.bufferCount
            options.ringEntries = ringEntries ?? options.ringEntries
            options.completionQueueEntries = cqEntries ?? options.completionQueueEntries
            options.deferTaskrun = deferTaskrun ?? options.deferTaskrun
            // COOP_TASKRUN is negotiated only in place of DEFER_TASKRUN.
            options.coopTaskrun = coopTaskrun ?? (options.deferTaskrun ? false : options.coopTaskrun)
            options.fixedFiles = fixedFiles
            options.zeroCopyThreshold = zerocopySend
            options.incrementalBuffers = incrementalBuffers ?? options.incrementalBuffers
            if splice {
                options.splice = spliceMode ?? .poll
                options.pipeSize = pipeSize ?? options.pipeSize
            }
            let given: Set<URingFeature> = Set([deferTaskrun.map { _ in .deferTaskrun },
                                                incrementalBuffers.map { _ in .incrementalBuffers }].compactMap { $0 })
            // The splice loop has no receive mode and no buffers: of what the kernel may lack, only
            // DEFER_TASKRUN would change it.
            negotiation.leftOut.removeAll { given.contains($0.feature) || (splice && $0.feature != .deferTaskrun) }
            negotiation.options = options
            return (.uring(options), negotiation)
        case .epoll:
            var options = EpollBackend.Options()
            options.bufferSize = bufferSize ?? options.bufferSize
            options.trigger = epollMode
            options.maxEvents = maxEvents ?? options.maxEvents
            options.splice = splice
            options.pipeSize = pipeSize ?? options.pipeSize
            return (.epoll(options), nil)
        case .blocking:
            var options = BlockingBackend.Options()
            options.mode = blockingMode
            options.bufferSize = bufferSize ?? options.bufferSize
            return (.blocking(options), nil)
        }
    }

    public func run() throws {
        if features {
            print(json ? KernelReport.json(.running) : KernelReport.table(.running), terminator: "")
            return
        }
        if listVariants {
            print(json ? NamedConfiguration.json() : NamedConfiguration.table(), terminator: "")
            return
        }
        let made = setup(on: .running)
        let plan = try checkedPlan(made.setup.backend)
        let kernelLine = made.negotiation.map { "echo: " + $0.line(on: .running) }
        if check {
            print("echo: \(type(of: plan.backend).name) backend can serve (\(plan.backend.summary))")
            if let kernelLine { print(kernelLine) }
            return
        }
        try serve(plan, negotiation: made.negotiation, kernelLine: kernelLine)
    }

    /// `backend` with the loops and limits the flags ask for, checked once against this kernel:
    /// the one check of this process (the start takes the plan and does not check again).
    private func checkedPlan(_ backend: any EventBackend) throws -> EchoServer.Plan {
        do {
            return try EchoServer.Plan(backend, loops: threads, limits: limits)
        } catch EchoError.invalidConfiguration(let message) {
            // An option out of the backend's range is a usage error, like the checks above.
            throw ValidationError(message)
        }
    }

    /// Serves until SIGINT or SIGTERM, then prints the final report.
    private func serve(_ plan: EchoServer.Plan, negotiation: URingBackend.Negotiation?,
                       kernelLine: String?) throws {
        let startedAt = MonotonicTime.now()
        FileDescriptorLimit.raiseToHardLimit()
        // Sends use MSG_NOSIGNAL; this covers any other write to a closed socket or pipe
        // (stderr piped into a pager that quit, say).
        signal(SIGPIPE, SIG_IGN)
        // Before any thread exists, so every thread inherits the mask and SIGINT/SIGTERM (stop)
        // and SIGUSR1 (statistics sample) reach only the signal thread's sigwait.
        let watchedSignals = SignalSet.blockInCallingThread([SIGINT, SIGTERM, SIGUSR1])

        let backend = plan.backend
        let server = try EchoServer.start(plan, host: host, port: port, backlog: Int32(backlog), pinned: pin)
        let console = Console()
        var statsFile: StatsFile?
        if let statsJson {
            let file = StatsFile(path: statsJson, backendName: type(of: backend).name,
                                 summary: backend.summary, negotiation: negotiation, startedAt: startedAt,
                                 server: server)
            do {
                try file.write(reason: "start")
            } catch {
                _ = try? server.shutdown()
                throw error
            }
            statsFile = file
        }
        var sample: (@Sendable () -> Void)?
        if let file = statsFile {
            sample = { @Sendable in
                do { try file.write(reason: "signal") } catch { console.write("echo: error: \(error)") }
            }
        }
        let stopClock = StopClock()
        try SignalWatcher.start(watchedSignals, console: console, quiet: quiet, sample: sample) {
            stopClock.markRequested()
            server.stop()
        }
        if !quiet {
            let loops = threads > 1 ? ", \(threads) loops" + (pin ? " pinned" : "") : ""
            console.write("echo: \(type(of: backend).name) backend listening on "
                + "\(Endpoint.text(host: host, port: server.port)) (\(backend.summary)\(loops))")
            if let kernelLine { console.write(kernelLine) }
        }
        if statsInterval > 0 {
            try IntervalReporter.start(server: server, seconds: statsInterval, console: console)
        }

        let outcome = Result { () throws(EchoError) in try server.wait() }
        let shutdown = stopClock.secondsSinceRequest()
        if let statsFile {
            // At stop, also when the loop failed: the counters up to the failure.
            do { try statsFile.write(reason: "stop") } catch { console.write("echo: error: \(error)") }
        }
        let statistics = try outcome.get()
        console.close()
        if !quiet {
            let elapsed = MonotonicTime.now().seconds(since: startedAt)
            for line in Report.final(statistics, seconds: elapsed, shutdown: shutdown) { console.writeAfterClose(line) }
        }
    }
}

// The flags name the backends' own enums: their cases are the values, their options the defaults.
extension URingBackend.Mode: ExpressibleByArgument {}
extension URingBackend.SpliceStrategy: ExpressibleByArgument {}
extension EpollBackend.Trigger: ExpressibleByArgument {}
extension BlockingBackend.Mode: ExpressibleByArgument {}
extension ServerLimits.OverLimit: ExpressibleByArgument {}
