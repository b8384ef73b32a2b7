import Testing
import Backend
import URingBackend
import EpollBackend
import BlockingBackend
import EchoCLI

/// Every backend configuration the conformance suite runs against: each io_uring mode and switch,
/// both epoll trigger modes, and both blocking modes.
///
/// `uring` is URingBackend with its default options (multishot with `DEFER_TASKRUN` and incremental
/// consumption of 64 KiB buffers); `uringLegacy`
/// is the classic design; the other uring cases switch one feature each on or off.
///
/// Each case is written once, as options (``setup``): the `echo` flags the CLI tests start it with
/// are rendered from them (``cliArguments``), and `ConfigurationTests` checks that `echo` parses
/// them back into the same options. The lists of cases the suites run (``everyLoop``, ``cli``,
/// ``eventDriven``, …) are derived from each case's ``setup``, so a case with a new loop mode lands
/// in every list that should run it.
/// Declare each loop mode's plain configuration first: ``everyLoop`` takes the first case of each mode.
enum BackendUnderTest: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case uring
    case uringLegacy
    case uringMultishotWithoutDeferTaskrun
    case uringMultishotFixedFilesZeroCopy
    case uringMultishotSQPoll
    case uringBundle
    case uringMultishotIncremental
    case uringMultishotWholeBuffers
    case uringSplicePoll
    case uringSpliceLinked
    case epoll
    case epollEdge
    case epollSplice
    case epollEdgeSplice
    case blockingThreaded
    case blockingNaive

    var testDescription: String { rawValue }

    /// A backend with its options, as `echo` parses them. Family and loop mode are read from
    /// here, so they cannot disagree with what the case runs.
    typealias Setup = ServerSetup

    /// The backends, by the kind of loop they run.
    enum Family: Hashable, Sendable {
        case uring, epoll, blocking

        /// Whether the family is built for tens of thousands of connections: a thread per
        /// connection (or one connection at a time) is not.
        var isEventDriven: Bool { self != .blocking }
        /// Whether `echo --threads` runs several loops of this family; blocking refuses it (its
        /// threaded mode is its own answer to concurrency).
        var runsSeveralLoops: Bool { self != .blocking }

        /// The loop the family's backend runs with its default options.
        var defaultLoop: LoopMode {
            switch self {
            case .uring: LoopMode(.uring(URingBackend.Options.negotiated(on: .running).options))
            case .epoll: LoopMode(.epoll(EpollBackend.Options()))
            case .blocking: LoopMode(.blocking(BlockingBackend.Options()))
            }
        }
    }

    /// The loop a configuration exercises: io_uring legacy, multishot or bundle, epoll level or edge
    /// with copies or splices, blocking threaded or naive. Switches such as `SQPOLL` or fixed files
    /// change how the loop talks to the kernel, not which loop runs; splicing changes the data path.
    enum LoopMode: Hashable, Sendable {
        /// An io_uring mode, or with a splice strategy the splice loop (which has no mode of its own).
        case uring(URingBackend.Mode, splice: URingBackend.SpliceStrategy?)
        case epoll(EpollBackend.Trigger, splice: Bool)
        case blocking(BlockingBackend.Mode)

        /// The loop `setup` runs.
        init(_ setup: Setup) {
            switch setup {
            case .uring(let options): self = .uring(options.splice == nil ? options.mode : .multishot, splice: options.splice)
            case .epoll(let options): self = .epoll(options.trigger, splice: options.splice)
            case .blocking(let options): self = .blocking(options.mode)
            }
        }

        var family: Family {
            switch self {
            case .uring: .uring
            case .epoll: .epoll
            case .blocking: .blocking
            }
        }

        /// Whether the loop echoes through pipes with `splice` rather than copying.
        var splices: Bool {
            switch self {
            case .uring(_, let splice): splice != nil
            case .epoll(_, let splice): splice
            case .blocking: false
            }
        }

        /// What the bytes go through: the family's loop, copying or splicing.
        var dataPath: DataPath { DataPath(family: family, splices: splices) }

        /// Every loop mode the backends have: the test suite needs a case for each.
        static let all: [LoopMode] = URingBackend.Mode.allCases.map { LoopMode.uring($0, splice: nil) }
            + URingBackend.SpliceStrategy.allCases.map { LoopMode.uring(.multishot, splice: $0) }
            + [false, true].flatMap { splice in EpollBackend.Trigger.allCases.map { LoopMode.epoll($0, splice: splice) } }
            + BlockingBackend.Mode.allCases.map(LoopMode.blocking)
    }

    /// A family's copy path or splice path: the suites that cannot afford every loop mode run one
    /// case of each (``everyDataPath``), so neither path of any backend is left out.
    struct DataPath: Hashable, Sendable {
        let family: Family
        let splices: Bool
    }

    /// The backend and options this case runs.
    var setup: Setup {
        switch self {
        case .uring:
            return .uring(URingBackend.Options())
        case .uringLegacy:
            return .uring(.legacy)
        case .uringMultishotWithoutDeferTaskrun:
            // COOP_TASKRUN in its place, and whole buffers: the design the negotiation gives Linux 6.0.
            var options = URingBackend.Options()
            options.deferTaskrun = false
            options.coopTaskrun = true
            options.incrementalBuffers = false
            return .uring(options)
        case .uringMultishotFixedFilesZeroCopy:
            var options = URingBackend.Options()
            options.fixedFiles = true
            options.zeroCopyThreshold = 2048
            return .uring(options)
        case .uringMultishotSQPoll:
            var options = URingBackend.Options()
            options.deferTaskrun = false
            options.sqpoll = true
            return .uring(options)
        case .uringBundle:
            // Small buffers, so streams make bundles of several buffers and sends gather them.
            var options = URingBackend.Options(mode: .bundle)
            options.bufferSize = 1024
            return .uring(options)
        case .uringMultishotIncremental:
            // Small buffers, so messages are cut across buffers and connections share each one,
            // and a small ring, so a busy turn fills the submission queue and overflows the
            // completion queue.
            var options = URingBackend.Options()
            options.incrementalBuffers = true
            options.bufferSize = 4096
            options.bufferCount = 64
            options.ringEntries = 64
            options.completionQueueEntries = 256
            return .uring(options)
        case .uringMultishotWholeBuffers:
            // The default before incremental consumption: a whole 4 KiB buffer per receive.
            var options = URingBackend.Options()
            options.incrementalBuffers = false
            options.bufferSize = 4096
            options.bufferCount = 4096
            return .uring(options)
        case .uringSplicePoll:
            var options = URingBackend.Options()
            options.splice = .poll
            return .uring(options)
        case .uringSpliceLinked:
            var options = URingBackend.Options()
            options.splice = .linked
            return .uring(options)
        case .epoll:
            return .epoll(EpollBackend.Options())
        case .epollEdge:
            // Few events per wait, so a busy turn takes part of the ready list and the next wait
            // must report the rest, which edge triggering reports only once.
            var options = EpollBackend.Options()
            options.trigger = .edge
            options.maxEvents = 8
            return .epoll(options)
        case .epollSplice:
            var options = EpollBackend.Options()
            options.splice = true
            return .epoll(options)
        case .epollEdgeSplice:
            // Pipes smaller than a stream's writes, so a message takes several splices each way.
            var options = EpollBackend.Options()
            options.trigger = .edge
            options.splice = true
            options.pipeSize = 16384
            return .epoll(options)
        case .blockingThreaded:
            var options = BlockingBackend.Options()
            options.mode = .threaded
            return .blocking(options)
        case .blockingNaive:
            var options = BlockingBackend.Options()
            options.mode = .naive
            return .blocking(options)
        }
    }

    /// What `echo` runs for ``cliArguments`` on the running kernel, and so what the in-process
    /// servers run: ``setup`` where the case states its design, and where it leaves the design open
    /// (`uring`, and the ring under a splice loop), what this kernel negotiates. On a kernel with
    /// every feature the two are the same (`ConfigurationTests`).
    var setupHere: Setup { Self.setupsHere[self] ?? setup }

    private static let setupsHere: [BackendUnderTest: Setup] = Dictionary(uniqueKeysWithValues: allCases.compactMap { backend in
        (try? ServerSetup(parsing: backend.cliArguments, on: .running)).map { (backend, $0) }
    })

    /// The backend this case runs here.
    var backend: any EventBackend { setupHere.backend }

    /// The cases the running kernel can serve, in the order declared: every suite runs these. Each
    /// case left out is said once, with why, on standard output.
    static let runnable: [BackendUnderTest] = RunningKernel.serving(allCases, named: { "test case \($0)" }) { backend in
        guard case .uring(let options) = backend.setupHere else { return nil }
        return options
    }

    var loopMode: LoopMode { LoopMode(setupHere) }

    var family: Family { loopMode.family }

    /// Whether the backend serves several clients at once. The naive blocking loop serves one
    /// connection until it closes; the others wait in the listen backlog.
    var servesConcurrentClients: Bool { loopMode != .blocking(.naive) }

    /// Starts an in-process server on 127.0.0.1, on a port the kernel picks.
    func start(loops: Int = 1) throws -> EchoServer {
        TestEnvironment.prepare()
        return try EchoServer.start(backend, host: "127.0.0.1", port: 0, loops: loops)
    }

    /// The `echo` flags that select this backend, rendered from ``setup``. Every design choice is
    /// a requirement, but for the default case, which leaves the design to the kernel as a bare
    /// `echo --backend uring` does.
    var cliArguments: [String] { setup.arguments(negotiating: self == .uring) }

    /// The `benchmarks/soak --backend` name of a case ``soak`` runs, nil for the others: the first
    /// of echo's named configurations (the kit's variants, `NamedConfiguration.all`) that runs the
    /// same loop, so the bundle case soaks `uring-multishot-defer-bundle`, the bundle mode with
    /// default buffers. nil too when no named configuration runs the loop.
    var soakName: String? {
        guard Self.soak.contains(self) else { return nil }
        return NamedConfiguration.all.first { LoopMode($0.setup) == loopMode }?.name
    }

    /// One case per loop mode (the first declared): the suites that run a configuration end to end
    /// cover every loop without repeating each io_uring switch.
    static let everyLoop: [BackendUnderTest] = {
        var seen: Set<LoopMode> = []
        return runnable.filter { seen.insert($0.loopMode).inserted }
    }()
    /// One case per data path (the first declared): each family's copy path and splice path.
    static let everyDataPath: [BackendUnderTest] = {
        var seen: Set<DataPath> = []
        return runnable.filter { seen.insert($0.loopMode.dataPath).inserted }
    }()
    /// Every case that serves several clients at once.
    static let concurrent: [BackendUnderTest] = runnable.filter(\.servesConcurrentClients)
    /// One case per loop mode that serves several clients at once.
    static let concurrentLoops: [BackendUnderTest] = everyLoop.filter(\.servesConcurrentClients)
    /// The configurations the CLI tests run through the `echo` executable: every loop.
    static let cli: [BackendUnderTest] = everyLoop
    /// One case per loop mode meant for tens of thousands of connections.
    static let eventDriven: [BackendUnderTest] = everyLoop.filter(\.family.isEventDriven)
    /// One case per loop mode that can run several loops (`--threads`).
    static let multiLoop: [BackendUnderTest] = everyLoop.filter(\.family.runsSeveralLoops)
    /// The cases `benchmarks/soak` runs, under the name ``soakName`` gives. A soak takes 30 s, so it
    /// runs the default loop of each event-driven family and the bundle mode, the one loop whose
    /// memory grows with each connection (a buffer ring of its own).
    static let soak: [BackendUnderTest] = everyLoop.filter { backend in
        backend.family.isEventDriven
            && (backend.loopMode == backend.family.defaultLoop || backend.loopMode == .uring(.bundle, splice: nil)
                || (backend.loopMode.splices && NamedConfiguration.all.contains { LoopMode($0.setup) == backend.loopMode }))
    }
}
