import Backend
import CLinux

#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

/// The epoll event loop: one per ``EpollBackend/run(listener:stop:statistics:limits:)`` call, created and
/// used on the loop thread only.
///
/// A noncopyable value rather than a class: the loop's state is reached through `self` without
/// reference counting or dynamic exclusivity checks, and its memory is released when `run` returns.
///
/// Each turn waits for one batch of events, serves it, and publishes the counters:
/// - the stop signal's eventfd ends the loop: every connection is closed, then the epoll descriptor;
/// - the listener is drained with `accept4` (see `EpollLoop+Accepting.swift`);
/// - connection events are served with `read` and `send` (see `EpollLoop+Connections.swift`).
///
/// Every system call the loop makes is counted in ``statistics``.
struct EpollLoop: ~Copyable {
    /// Full reads one connection may do for one level-triggered event before the loop serves the
    /// others: a descriptor with data left is reported again by the next wait.
    static let readsPerLevelEvent = 16
    /// Slots the connection table starts with.
    static let initialTableCapacity = 4096
    /// Flags for every `send`: no `SIGPIPE` when the peer has gone.
    static let sendFlags = Int32(MSG_NOSIGNAL)

    /// Whether the listener is in the epoll set.
    enum ListenerState {
        /// Registered: the loop accepts whenever connections wait.
        case watched
        /// Taken out of the set after an accept failed for lack of resources, or at the connection
        /// cap; put back once a connection closes, or at the given time.
        case paused(until: MonotonicTime)
    }

    /// The epoll instance.
    let epollDescriptor: Int32
    /// The listening socket (owned by the caller).
    let listener: Int32
    /// The stop signal's eventfd (owned by the caller).
    let stopDescriptor: Int32
    /// Bytes asked for by each read.
    let bufferSize: Int
    /// Events taken per wait.
    let batchSize: Int32
    /// Flags added to every registration: none for level-triggered readiness, `EPOLLET` for edge.
    let triggerFlags: UInt32
    /// Full reads per event: ``readsPerLevelEvent``, or unbounded when edge-triggered (an edge
    /// is not reported again, so the loop reads until a read comes up short).
    let readsPerEvent: Int
    /// The one buffer every connection reads into.
    let readBuffer: UnsafeMutableRawPointer
    /// Where `epoll_wait` leaves its batch.
    let events: UnsafeMutablePointer<epoll_event>
    /// Where the counters are published.
    let live: LiveStatistics
    /// This loop's connection cap (`Int.max`: none) and what a connection over it meets.
    let maxConnections: Int
    let overLimit: ServerLimits.OverLimit
    /// The idle timeout's tick, when there is one.
    let tickNanoseconds: UInt64?

    /// Every connection's state, by descriptor.
    var connections: ConnectionTable
    /// Buffers for connections holding unsent bytes.
    var pendingBuffers: PendingBufferPool
    /// Whether connections splice (`--splice`), and the pipes they do it through.
    let splicing: Bool
    var pipes: PipePool
    /// The counters, published once per turn.
    var statistics = ServerStatistics()
    /// Whether the listener is being watched.
    var listenerState = ListenerState.watched
    /// Whether a connection closed during this turn (a reason to resume accepting).
    var closedThisTurn = false
    /// Whether the stop signal fired.
    var stopRequested = false
    /// Whether ``epollDescriptor`` is still open.
    var epollOpen = true
    /// When each connection was last active (`--idle-timeout`), and when the next tick is due.
    var idle: IdleTracker
    var nextTick = MonotonicTime.distantFuture

    /// Makes `listener` non-blocking, creates the epoll instance and allocates the loop's buffers.
    ///
    /// - Throws: ``EchoError`` `.system` when `fcntl` or `epoll_create1` fails.
    init(listener: ListeningSocket, stop: StopSignal, options: EpollBackend.Options,
         statistics live: LiveStatistics, limits: ServerLimits) throws(EchoError) {
        try listener.setNonBlocking(true)
        let epollDescriptor = try SystemCall.run("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        self.epollDescriptor = epollDescriptor
        self.listener = listener.fileDescriptor
        stopDescriptor = stop.fileDescriptor
        bufferSize = options.bufferSize
        batchSize = Int32(options.maxEvents)
        // Edge-triggered, a FIN that arrived with the last bytes raises no edge of its own after
        // the read that drains them, so EPOLLRDHUP is asked for and tells the loop to read on to it.
        triggerFlags = options.trigger == .edge ? EPOLLET.rawValue | EPOLLRDHUP.rawValue : 0
        readsPerEvent = options.trigger == .edge ? Int.max : Self.readsPerLevelEvent
        readBuffer = .allocate(byteCount: options.bufferSize, alignment: 64)
        events = .allocate(capacity: options.maxEvents)
        self.live = live
        maxConnections = limits.maxConnections ?? .max
        overLimit = limits.overLimit
        tickNanoseconds = limits.tickNanoseconds
        idle = IdleTracker(limits: limits)
        if let tick = limits.tickNanoseconds { nextTick = MonotonicTime.now().adding(nanoseconds: tick) }
        connections = ConnectionTable(capacity: Self.initialTableCapacity)
        pendingBuffers = PendingBufferPool(bufferSize: options.bufferSize)
        splicing = options.splice
        pipes = PipePool(capacity: options.splice ? options.pipeLimit : 0, pipeSize: options.pipeSize)
        statistics[.other] = 3  // fcntl(F_GETFL), fcntl(F_SETFL), epoll_create1
    }

    deinit {
        if epollOpen { _ = Glibc.close(epollDescriptor) }
        readBuffer.deallocate()
        events.deallocate()
    }

    /// Runs until the stop signal fires or a fatal error, then closes every connection and the
    /// epoll instance and publishes the final counters.
    mutating func run() throws(EchoError) {
        defer { finish() }
        try register(stopDescriptor, "the stop signal")
        try register(listener, "the listener")
        live.publish(statistics)

        while !stopRequested {
            let count = try waitForEvents()
            // A whole wait with nothing to do: pipes nobody uses give their descriptors back.
            if count == 0 && pipes.idleCount > 0 { closeIdlePipes() }
            var index = 0
            while index < count && !stopRequested {
                let event = events[index]
                let token = EventToken(rawValue: event.data.u64)
                if token.isConnection {
                    serve(token, events: event.events)
                } else if token.descriptor == listener {
                    try acceptConnections()
                } else if token.descriptor == stopDescriptor {
                    stopRequested = true
                }
                index += 1
            }
            if !stopRequested { try endTurn() }
            live.publish(statistics)
        }
    }

    /// Waits for the next batch and returns its size: 0 after a timeout or a signal.
    ///
    /// Waits without a timeout unless accepting is paused until a time, an idle timeout ticks, or
    /// idle pipes wait to be closed (``idlePipeTimeoutMilliseconds``).
    private mutating func waitForEvents() throws(EchoError) -> Int {
        var deadline = nextTick
        if case .paused(let until) = listenerState, until < deadline { deadline = until }
        var timeout = deadline == .distantFuture ? -1 : deadline.milliseconds(after: MonotonicTime.now())
        if pipes.idleCount > 0 && (timeout < 0 || timeout > Self.idlePipeTimeoutMilliseconds) {
            timeout = Self.idlePipeTimeoutMilliseconds
        }
        let outcome = SystemCall.outcome { epoll_wait(epollDescriptor, events, batchSize, timeout) }
        statistics[.epollWait] += 1
        if !outcome.failed { return Int(outcome.value) }
        if outcome.error == EINTR { return 0 }
        throw SystemCall.failure("epoll_wait", code: outcome.error)
    }

    /// Work left for the end of a turn: the idle timeout's tick when it is due, then putting the
    /// listener back once accepting may succeed. Reads the clock only when either waits for a time.
    private mutating func endTurn() throws(EchoError) {
        var now = MonotonicTime.distantFuture
        if tickNanoseconds != nil || isPaused { now = MonotonicTime.now() }
        if let tickNanoseconds, now >= nextTick {
            idle.advance()
            nextTick = nextTick.adding(nanoseconds: tickNanoseconds)
            if nextTick < now { nextTick = now.adding(nanoseconds: tickNanoseconds) }  // fell behind: skip
            closeIdleConnections()
        }
        try resumeAcceptingIfDue(now: now)
        closedThisTurn = false
    }

    /// Whether the listener is out of the epoll set.
    private var isPaused: Bool {
        if case .paused = listenerState { return true }
        return false
    }

    /// Closes every connection and the epoll instance, then publishes the final counters.
    private mutating func finish() {
        closeAllConnections()
        closeIdlePipes()
        if epollOpen {
            _ = Glibc.close(epollDescriptor)
            statistics[.close] += 1
            epollOpen = false
        }
        live.publish(statistics)
    }

    /// Adds `descriptor`, which is not a connection, to the set for reading.
    private mutating func register(_ descriptor: Int32, _ what: String) throws(EchoError) {
        let code = control(EPOLL_CTL_ADD, descriptor, interest: .read, token: .fixed(descriptor))
        guard code == 0 else { throw SystemCall.failure("epoll_ctl(EPOLL_CTL_ADD, \(what))", code: code) }
    }

    /// The event bits to register with for `interest`.
    @inline(__always)
    func events(for interest: Interest) -> UInt32 {
        interest.epollEvents | triggerFlags
    }

    /// `epoll_ctl` on this loop's instance, counted. Returns 0, or the error number it failed with.
    @inline(__always)
    mutating func control(_ operation: Int32, _ descriptor: Int32, interest: Interest, token: EventToken) -> Int32 {
        var event = epoll_event(events: events(for: interest), data: epoll_data_t(u64: token.rawValue))
        statistics[.epollCtl] += 1
        return SystemCall.outcome { epoll_ctl(epollDescriptor, operation, descriptor, &event) }.error
    }

    /// Removes `descriptor` from the set, counted. Returns 0, or the error number it failed with.
    mutating func remove(_ descriptor: Int32) -> Int32 {
        statistics[.epollCtl] += 1
        return SystemCall.outcome { epoll_ctl(epollDescriptor, EPOLL_CTL_DEL, descriptor, nil) }.error
    }

}
