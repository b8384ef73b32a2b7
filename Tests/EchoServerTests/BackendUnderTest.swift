import Testing
import Backend
import URingBackend
import EpollBackend
import BlockingBackend

/// Every backend configuration the conformance suite runs against: each io_uring mode and switch,
/// both epoll trigger modes, and both blocking modes.
///
/// `uring` is URingBackend with its default options (multishot with `DEFER_TASKRUN`); `uringLegacy`
/// is the seed's design; the other uring cases switch one feature each on or off.
enum BackendUnderTest: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case uring
    case uringLegacy
    case uringMultishotWithoutDeferTaskrun
    case uringMultishotFixedFilesZeroCopy
    case uringMultishotSQPoll
    case uringMultishotBundle
    case epoll
    case epollEdge
    case blockingThreaded
    case blockingNaive

    var testDescription: String { rawValue }

    /// Whether the backend serves several clients at once. The naive blocking loop serves one
    /// connection until it closes; the others wait in the listen backlog.
    var servesConcurrentClients: Bool { self != .blockingNaive }

    /// The backend this case runs.
    var backend: any EventBackend {
        switch self {
        case .uring:
            return URingBackend()
        case .uringLegacy:
            return URingBackend(options: .legacy)
        case .uringMultishotWithoutDeferTaskrun:
            var options = URingBackend.Options()
            options.deferTaskrun = false
            return URingBackend(options: options)
        case .uringMultishotFixedFilesZeroCopy:
            var options = URingBackend.Options()
            options.fixedFiles = true
            options.zeroCopyThreshold = 2048
            return URingBackend(options: options)
        case .uringMultishotSQPoll:
            var options = URingBackend.Options()
            options.deferTaskrun = false
            options.sqpoll = true
            return URingBackend(options: options)
        case .uringMultishotBundle:
            // Small buffers, so streams make bundles of several buffers and sends gather them.
            var options = URingBackend.Options()
            options.mode = .bundle
            options.bufferSize = 1024
            return URingBackend(options: options)
        case .epoll:
            return EpollBackend()
        case .epollEdge:
            var options = EpollBackend.Options()
            options.trigger = .edge
            return EpollBackend(options: options)
        case .blockingThreaded:
            var options = BlockingBackend.Options()
            options.mode = .threaded
            return BlockingBackend(options: options)
        case .blockingNaive:
            var options = BlockingBackend.Options()
            options.mode = .naive
            return BlockingBackend(options: options)
        }
    }

    /// Starts an in-process server on 127.0.0.1, on a port the kernel picks.
    func start(loops: Int = 1) throws -> EchoServer {
        TestEnvironment.prepare()
        return try EchoServer.start(backend, host: "127.0.0.1", port: 0, loops: loops)
    }

    /// The `echo` flags that select this backend (for the cases in ``cli``).
    var cliArguments: [String] {
        switch self {
        case .uring: return ["--backend", "uring"]
        case .uringLegacy: return ["--backend", "uring", "--uring-mode", "legacy"]
        case .uringMultishotWithoutDeferTaskrun: return ["--backend", "uring", "--no-defer-taskrun"]
        case .uringMultishotFixedFilesZeroCopy: return ["--backend", "uring", "--fixed-files", "--zerocopy-send", "2048"]
        case .uringMultishotSQPoll: return ["--backend", "uring", "--sqpoll"]
        case .uringMultishotBundle: return ["--backend", "uring", "--uring-mode", "bundle", "--buffer-size", "1024"]
        case .epoll: return ["--backend", "epoll"]
        case .epollEdge: return ["--backend", "epoll", "--epoll-mode", "edge"]
        case .blockingThreaded: return ["--backend", "blocking", "--blocking-mode", "threaded"]
        case .blockingNaive: return ["--backend", "blocking", "--blocking-mode", "naive"]
        }
    }

    static let concurrent: [BackendUnderTest] = allCases.filter(\.servesConcurrentClients)
    /// The configurations the CLI tests run through the `echo` executable.
    static let cli: [BackendUnderTest] = [.uring, .uringLegacy, .epoll, .blockingThreaded, .blockingNaive]
    /// Backends meant for tens of thousands of connections.
    static let eventDriven: [BackendUnderTest] = [.uring, .uringLegacy, .epoll]
    /// Backends that can run several loops (`--threads`).
    static let multiLoop: [BackendUnderTest] = [.uring, .uringLegacy, .epoll, .epollEdge]
}
