import Backend
import EchoSupport

/// An echo backend on Linux `epoll(7)`: one thread, non-blocking sockets, level- or edge-triggered
/// readiness.
///
/// The loop waits with `epoll_wait`, accepts with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` until the
/// backlog is empty, and serves each readable connection from one read buffer shared by every
/// connection: it reads, sends the chunk straight back with `send(MSG_NOSIGNAL)`, and reads again only
/// when the read filled the buffer, since a shorter read means the socket is drained for now.
///
/// When a peer stops reading and a send comes up short, the unsent bytes move to a buffer of their
/// own for that connection and the connection waits for `EPOLLOUT` instead of `EPOLLIN`: it reads
/// nothing more until those bytes are gone, so each connection holds at most one read's worth of
/// data however much its peer writes.
///
/// ```swift
/// var options = EpollBackend.Options()
/// options.bufferSize = 16384
/// let server = try EchoServer.start(EpollBackend(options: options), host: "127.0.0.1", port: 0)
/// ```
public struct EpollBackend: EventBackend {
    /// The name given to `echo --backend`.
    public static let name = "epoll"

    /// How readiness is reported.
    public enum Trigger: String, Sendable, CaseIterable {
        /// Level-triggered: a descriptor with data left is reported by every wait. Each connection
        /// does at most 16 full reads per event, so one busy peer cannot starve the others.
        case level
        /// Edge-triggered (`EPOLLET`): reported once per change. A connection reads until a read
        /// comes up short, since nothing would report the data left otherwise.
        case edge
    }

    /// What the epoll loop is sized with.
    public struct Options: Sendable, Equatable {
        /// Level- or edge-triggered readiness.
        public var trigger: Trigger = .level
        /// Bytes asked for by each `read(2)`, which is also the most a connection can hold
        /// unsent while its peer does not read: 1 byte … 16 MiB. The read buffer is one per loop,
        /// so the default is large: streams move 64 KiB per call (4–16× less kernel work per byte
        /// on loopback than 4 KiB), and an idle connection still holds nothing.
        public var bufferSize: Int = 65536
        /// Events taken per `epoll_wait(2)`: 1 … 65536.
        public var maxEvents: Int = 1024
        /// Echo through a pipe with `splice(2)` instead of reading into the loop's buffer: no copy
        /// into user space (see `EpollLoop+Splice.swift`). Pays for streams; a small message pays
        /// the same two system calls per direction as the copy path, to no gain.
        public var splice = false
        /// The capacity asked of each pipe with `splice` (`F_SETPIPE_SZ`;
        /// ``PipePool/pipeSizeRange``, default ``PipePool/defaultPipeSize``): the most one splice
        /// moves, and the most a connection holds while its peer does not read.
        public var pipeSize: Int = PipePool.defaultPipeSize
        /// The most pipes open at once with `splice` (two descriptors each); a connection that
        /// finds none free is served by the copy path (default ``PipePool/defaultLimit``).
        public var pipeLimit: Int = PipePool.defaultLimit

        /// The default options: level-triggered, 65536-byte reads, 1024 events per wait, no splicing.
        public init() {}

        /// The accepted range of ``bufferSize``.
        static let bufferSizeRange = 1...(16 << 20)
        /// The accepted range of ``maxEvents``.
        static let maxEventsRange = 1...65536
    }

    /// The options the loop runs with.
    public var options: Options

    /// A backend with `options`.
    public init(options: Options = .init()) {
        self.options = options
    }

    /// One line naming the backend and its options, e.g.
    /// `epoll, level-triggered, 65536-byte reads, 1024 events per wait`.
    public var summary: String {
        let events = options.maxEvents == 1 ? "1 event" : "\(options.maxEvents) events"
        let splice = options.splice ? ", splice through \(options.pipeSize)-byte pipes (at most \(options.pipeLimit))" : ""
        return "epoll, \(options.trigger.rawValue)-triggered, \(options.bufferSize)-byte reads, \(events) per wait\(splice)"
    }

    /// Checks that every option is in range.
    ///
    /// - Throws: ``EchoError/invalidConfiguration(_:)`` naming the first option out of range.
    public func validate() throws(EchoError) {
        let bufferSizes = Options.bufferSizeRange
        guard bufferSizes.contains(options.bufferSize) else {
            throw .invalidConfiguration("invalid epoll buffer size \(options.bufferSize): "
                + "must be \(bufferSizes.lowerBound)...\(bufferSizes.upperBound) bytes (16 MiB)")
        }
        let batchSizes = Options.maxEventsRange
        guard batchSizes.contains(options.maxEvents) else {
            throw .invalidConfiguration("invalid epoll batch size \(options.maxEvents): "
                + "must be \(batchSizes.lowerBound)...\(batchSizes.upperBound) events per wait")
        }
        try PipePool.validate(size: options.pipeSize, limit: options.pipeLimit)
    }

    /// Serves echo on `listener` on the calling thread until `stop` is requested, within `limits`.
    ///
    /// Switches `listener` to non-blocking mode; never closes it. On return every connection the
    /// loop accepted is closed and `statistics` holds the final counters.
    ///
    /// - Throws: ``EchoError`` `.system` when `epoll` cannot be set up or fails in a way the loop
    ///   cannot serve through.
    public func run(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics,
                    limits: ServerLimits) throws(EchoError) {
        var loop = try EpollLoop(listener: listener, stop: stop, options: options, statistics: statistics, limits: limits)
        try loop.run()
    }
}
