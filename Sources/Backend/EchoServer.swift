#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// A running echo server: listening sockets and a backend's loops, each on its own thread.
///
/// ```swift
/// let server = try EchoServer.start(EpollBackend(), host: "127.0.0.1", port: 0)
/// // … clients connect to server.port …
/// let statistics = try server.shutdown()
/// ```
///
/// With `loops` above 1, every loop gets its own listening socket bound to the same port with
/// `SO_REUSEPORT`, so the kernel spreads new connections across them, and its own ring or epoll
/// instance: nothing is shared between loops but the stop signal.
public final class EchoServer: Sendable {
    /// The sockets the loops serve, one per loop.
    public let listeners: [ListeningSocket]
    /// The signal that stops every loop.
    public let stopSignal: StopSignal
    /// Counters the loops publish while they run.
    public let statistics: StatisticsGroup
    private let threads: [LoopThread]
    private let outcome: Outcome

    /// Where the loop threads leave their first error, and whether someone has joined them.
    private final class Outcome: Sendable {
        let failure = Mutex<EchoError?>(nil)
        let joined = Mutex<Bool>(false)
    }

    /// The listen backlog unless one is given: connections the kernel completes and queues before
    /// the server accepts them (the kernel caps it at `net.core.somaxconn`).
    public static let defaultBacklog: Int32 = 4096

    /// The port clients connect to.
    public var port: Int { listeners[0].port }

    /// The first listening socket.
    public var listener: ListeningSocket { listeners[0] }

    private init(listeners: [ListeningSocket], stopSignal: StopSignal, statistics: StatisticsGroup,
                 threads: [LoopThread], outcome: Outcome) {
        self.listeners = listeners
        self.stopSignal = stopSignal
        self.statistics = statistics
        self.threads = threads
        self.outcome = outcome
    }

    /// Binds `host:port` and starts `backend` on `loops` new threads.
    ///
    /// - Parameters:
    ///   - loops: how many event loops (and listening sockets) to run, at least 1.
    ///   - pinned: pin loop *i* to CPU *i* modulo the number of CPUs. A pin the kernel refuses
    ///     fails the start: a run asked to be pinned and silently not pinned would measure
    ///     something else than asked, and a warning is easy to miss in a benchmark's log.
    ///   - limits: the idle timeout and the connection cap, which the loops share.
    /// - Throws: ``EchoError`` when a socket cannot be bound, a thread cannot start or be pinned.
    ///   Errors a backend meets once running are thrown by ``wait()``.
    public static func start(_ backend: some EventBackend, host: String = "127.0.0.1", port: Int = 0,
                             backlog: Int32 = defaultBacklog, loops: Int = 1, pinned: Bool = false,
                             limits: ServerLimits = ServerLimits()) throws(EchoError) -> EchoServer {
        guard loops >= 1 else { throw .invalidConfiguration("invalid thread count \(loops): must be at least 1") }
        try limits.validate(loops: loops)
        var listeners: [ListeningSocket] = []
        do {
            let first = try ListeningSocket.bind(host: host, port: port, backlog: backlog, reusePort: loops > 1)
            listeners.append(first)
            for _ in 1..<loops {
                listeners.append(try ListeningSocket.bind(host: host, port: first.port, backlog: backlog, reusePort: true))
            }
        } catch {
            listeners.forEach { $0.close() }
            throw error
        }
        let stop: StopSignal
        do { stop = try StopSignal() } catch { listeners.forEach { $0.close() }; throw error }
        let statistics = StatisticsGroup(loops: loops)
        let outcome = Outcome()
        let cpus = max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1)
        var threads: [LoopThread] = []
        for (index, listener) in listeners.enumerated() {
            let published = statistics.members[index]
            let share = limits.share(loop: index, of: loops)
            do {
                let name = loops > 1 ? "echo-\(type(of: backend).name)-\(index)" : "echo-\(type(of: backend).name)"
                threads.append(try LoopThread(name: name) {
                    do throws(EchoError) {
                        try backend.run(listener: listener, stop: stop, statistics: published, limits: share)
                    } catch {
                        outcome.failure.withLock { if $0 == nil { $0 = error } }
                    }
                    // One loop that ends, by error or not, ends the server, so waiters wake up.
                    stop.requestStop()
                })
                // From here rather than from the thread itself, so a refusal fails the start. The
                // loop may run unpinned for the few microseconds until then.
                if pinned { try threads[index].pin(toCPU: index % cpus) }
            } catch {
                stop.requestStop()
                threads.forEach { $0.join() }
                listeners.forEach { $0.close() }
                throw error
            }
        }
        return EchoServer(listeners: listeners, stopSignal: stop, statistics: statistics, threads: threads, outcome: outcome)
    }

    /// Asks every loop to stop. Returns at once; ``wait()`` waits for them to finish.
    public func stop() {
        stopSignal.requestStop()
    }

    /// Waits for every loop to finish, closes the listening sockets and returns the final statistics.
    ///
    /// - Throws: the first ``EchoError`` a loop stopped with, if any.
    public func wait() throws(EchoError) -> ServerStatistics {
        let first = outcome.joined.withLock { joined -> Bool in
            defer { joined = true }
            return !joined
        }
        if first {
            threads.forEach { $0.join() }
            listeners.forEach { $0.close() }
        }
        if let error = outcome.failure.withLock({ $0 }) { throw error }
        return statistics.snapshot()
    }

    /// Stops the loops and waits for them: ``stop()`` then ``wait()``.
    @discardableResult
    public func shutdown() throws(EchoError) -> ServerStatistics {
        stop()
        return try wait()
    }
}
