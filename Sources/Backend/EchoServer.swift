#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A running echo server: a listening socket and a backend's loop on its own thread.
///
/// ```swift
/// let server = try EchoServer.start(EpollBackend(), host: "127.0.0.1", port: 0)
/// // … clients connect to server.port …
/// server.stop()
/// let statistics = try server.wait()
/// ```
public final class EchoServer: Sendable {
    /// The socket the backend serves.
    public let listener: ListeningSocket
    /// The signal that stops the loop.
    public let stopSignal: StopSignal
    /// Counters the loop publishes while it runs.
    public let statistics: LiveStatistics
    private let thread: LoopThread
    private let outcome: Outcome

    /// Where the loop thread leaves its result, and whether someone has joined it.
    private final class Outcome: Sendable {
        let result = Mutex<Result<Void, EchoError>?>(nil)
        let joined = Mutex<Bool>(false)
    }

    /// The port clients connect to.
    public var port: Int { listener.port }

    private init(listener: ListeningSocket, stopSignal: StopSignal, statistics: LiveStatistics,
                 thread: LoopThread, outcome: Outcome) {
        self.listener = listener
        self.stopSignal = stopSignal
        self.statistics = statistics
        self.thread = thread
        self.outcome = outcome
    }

    /// Binds `host:port` and starts `backend` on a new thread.
    ///
    /// - Throws: ``EchoError`` when the socket cannot be bound or the thread cannot start.
    ///   Errors the backend meets once running are thrown by ``wait()``.
    public static func start(_ backend: some EventBackend, host: String = "127.0.0.1", port: Int = 0,
                             backlog: Int32 = 4096) throws(EchoError) -> EchoServer {
        let listener = try ListeningSocket.bind(host: host, port: port, backlog: backlog)
        let stop: StopSignal
        do { stop = try StopSignal() } catch { listener.close(); throw error }
        let statistics = LiveStatistics()
        let outcome = Outcome()
        let thread: LoopThread
        do {
            thread = try LoopThread(name: "echo-\(type(of: backend).name)") {
                let result: Result<Void, EchoError>
                do throws(EchoError) {
                    try backend.run(listener: listener, stop: stop, statistics: statistics)
                    result = .success(())
                } catch {
                    result = .failure(error)
                }
                outcome.result.withLock { $0 = result }
                // A loop that failed or returned stops the server as a whole, so waiters wake up.
                stop.requestStop()
            }
        } catch {
            listener.close()
            throw error
        }
        return EchoServer(listener: listener, stopSignal: stop, statistics: statistics, thread: thread, outcome: outcome)
    }

    /// Asks the loop to stop. Returns at once; ``wait()`` waits for the loop to finish.
    public func stop() {
        stopSignal.requestStop()
    }

    /// Waits for the loop to finish, closes the listening socket and returns the final statistics.
    ///
    /// - Throws: the ``EchoError`` the backend stopped with, if any.
    public func wait() throws(EchoError) -> ServerStatistics {
        let first = outcome.joined.withLock { joined -> Bool in
            defer { joined = true }
            return !joined
        }
        if first {
            thread.join()
            listener.close()
        }
        if case .failure(let error) = outcome.result.withLock({ $0 }) { throw error }
        return statistics.snapshot()
    }

    /// Stops the loop and waits for it: ``stop()`` then ``wait()``.
    @discardableResult
    public func shutdown() throws(EchoError) -> ServerStatistics {
        stop()
        return try wait()
    }
}
