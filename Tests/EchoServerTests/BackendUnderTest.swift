import Testing
import Backend
import URingBackend
import EpollBackend
import BlockingBackend

/// Every backend configuration the conformance suite runs against.
///
/// `uring` is URingBackend with its default options (the seed's design); the two `uringMultishot`
/// cases switch on its multishot loop (multishot accept and receive, a provided-buffer ring), the
/// second with registered (direct) descriptors and zero-copy sends as well.
enum BackendUnderTest: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case uring
    case uringMultishot
    case uringMultishotFixedFilesZeroCopy
    case epoll
    case blockingThreaded
    case blockingNaive

    var testDescription: String { rawValue }

    /// Whether the backend serves several clients at once. The naive blocking loop serves one
    /// connection until it closes; the others wait in the listen backlog.
    var servesConcurrentClients: Bool { self != .blockingNaive }

    /// Starts an in-process server on 127.0.0.1, on a port the kernel picks.
    func start() throws -> EchoServer {
        TestEnvironment.prepare()
        switch self {
        case .uring:
            return try EchoServer.start(URingBackend(), host: "127.0.0.1", port: 0)
        case .uringMultishot:
            var options = URingBackend.Options()
            options.mode = .multishot
            options.deferTaskrun = true
            return try EchoServer.start(URingBackend(options: options), host: "127.0.0.1", port: 0)
        case .uringMultishotFixedFilesZeroCopy:
            var options = URingBackend.Options()
            options.mode = .multishot
            options.fixedFiles = true
            options.zeroCopyThreshold = 2048
            return try EchoServer.start(URingBackend(options: options), host: "127.0.0.1", port: 0)
        case .epoll:
            return try EchoServer.start(EpollBackend(), host: "127.0.0.1", port: 0)
        case .blockingThreaded:
            var options = BlockingBackend.Options()
            options.mode = .threaded
            return try EchoServer.start(BlockingBackend(options: options), host: "127.0.0.1", port: 0)
        case .blockingNaive:
            var options = BlockingBackend.Options()
            options.mode = .naive
            return try EchoServer.start(BlockingBackend(options: options), host: "127.0.0.1", port: 0)
        }
    }

    /// The `echo` flags that select this backend (for the cases in ``cli``).
    var cliArguments: [String] {
        switch self {
        case .uring, .uringMultishot, .uringMultishotFixedFilesZeroCopy: return ["--backend", "uring"]
        case .epoll: return ["--backend", "epoll"]
        case .blockingThreaded: return ["--backend", "blocking", "--blocking-mode", "threaded"]
        case .blockingNaive: return ["--backend", "blocking", "--blocking-mode", "naive"]
        }
    }

    static let concurrent: [BackendUnderTest] = allCases.filter(\.servesConcurrentClients)
    /// The configurations the `echo` executable's flags can select.
    static let cli: [BackendUnderTest] = [.uring, .epoll, .blockingThreaded, .blockingNaive]
    /// Backends meant for tens of thousands of connections.
    static let eventDriven: [BackendUnderTest] = [.uring, .epoll]
}
