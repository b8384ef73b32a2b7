import EchoSupport
/// An event backend: one way of serving TCP echo on a listening socket.
///
/// A backend is a small value that holds its own options. ``EchoServer`` binds the listening
/// socket, then calls ``run(listener:stop:statistics:limits:)`` on a dedicated thread. The backend runs
/// its loop with plain blocking waits (`io_uring_submit_and_wait`, `epoll_wait`, `accept`) until
/// `stop` is requested, then closes every connection it owns and returns.
public protocol EventBackend: Sendable {
    /// The name given to `echo --backend`.
    static var name: String { get }

    /// A one-line summary of the backend and the options it runs with, for start-up logs.
    var summary: String { get }

    /// Checks the options and that the running kernel can serve them, before anything is bound.
    ///
    /// ``EchoServer/Plan`` calls it once per start, before anything is bound, so a bad option or a
    /// missing kernel feature is reported as one line before the server claims its port; `run`
    /// relies on it and does not check again. The default accepts everything.
    func validate() throws(EchoError)

    /// Serves echo on `listener` on the calling thread until `stop` is requested, with options
    /// ``validate()`` accepted.
    ///
    /// - Parameters:
    ///   - listener: a bound, listening socket. The backend may change its blocking mode, and
    ///     must not close it (the caller owns it).
    ///   - stop: the signal the loop watches; once requested, the loop stops accepting, closes its
    ///     connections and returns promptly.
    ///   - statistics: where the loop publishes its counters, at least once per loop turn, so
    ///     another thread can read them while it runs.
    ///   - limits: the idle timeout and this loop's share of the connection cap.
    /// - Throws: ``EchoError`` when the loop cannot start (a missing kernel feature, no memory) or
    ///   meets an error it cannot serve through.
    func run(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics,
             limits: ServerLimits) throws(EchoError)
}

extension EventBackend {
    public func validate() throws(EchoError) {}
}
