#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLinux
import Synchronization

/// The classic blocking server: blocking `accept`, blocking `read`, blocking `send`.
///
/// It is the baseline the event-driven backends are measured against, in two forms:
///
/// - ``Mode/naive``: one client at a time. The loop accepts a connection, echoes it until the
///   client closes, closes it and only then accepts the next one. Other clients wait in the
///   listen backlog. This is the server from every sockets tutorial.
/// - ``Mode/threaded``: one thread per connection. The calling thread accepts; every connection
///   gets its own thread and read buffer, each running the same blocking read/echo loop.
///
/// Blocking calls cannot watch the stop signal's eventfd, so the backend registers a waker with
/// ``StopSignal/onStop(_:)``: it shuts the listening socket down (a blocked `accept` then returns
/// `EINVAL`) and every open client socket (a blocked `read` returns 0, a blocked `send` `EPIPE`).
/// The set of open client descriptors lives behind a mutex that is touched only when a
/// connection opens or closes, never per request.
public struct BlockingBackend: EventBackend {
    public static let name = "blocking"

    /// How connections are served.
    public enum Mode: String, Sendable, CaseIterable {
        /// One client at a time, on the calling thread.
        case naive
        /// One thread per connection; the calling thread accepts.
        case threaded
    }

    public struct Options: Sendable, Equatable {
        /// How connections are served.
        public var mode: Mode = .naive
        /// Bytes read at once (per thread in threaded mode): 1 byte to 16 MiB.
        public var bufferSize: Int = 4096

        public init() {}
    }

    public var options: Options

    public init(options: Options = .init()) {
        self.options = options
    }

    /// The largest read buffer accepted.
    static let maximumBufferSize = 16 << 20

    /// Stack size of a connection thread. The loop is shallow and its buffer is on the heap, so
    /// glibc's default of 8 MiB per thread would only waste address space at thousands of threads.
    static let connectionStackSize = 512 << 10

    /// How long to back off when `accept` or `pthread_create` runs out of descriptors, memory or
    /// threads, so a full table does not make the accept loop spin: the shared back-off.
    static let backoffMicroseconds = UInt32(AcceptFailure.backoffNanoseconds / 1000)

    public var summary: String {
        switch options.mode {
        case .naive:
            return "blocking, naive: one client at a time, \(options.bufferSize)-byte read buffer"
        case .threaded:
            return "blocking, threaded: one thread per connection, \(options.bufferSize)-byte read buffer per thread"
        }
    }

    public func validate() throws(EchoError) {
        guard (1...Self.maximumBufferSize).contains(options.bufferSize) else {
            throw .invalidConfiguration(
                "invalid buffer size \(options.bufferSize): must be 1...\(Self.maximumBufferSize) bytes (16 MiB)")
        }
    }

    /// Serves until `stop`. With an idle timeout, every client socket gets `SO_RCVTIMEO` and
    /// `SO_SNDTIMEO` of that length: a read that waits that long for a byte, or a send that waits
    /// that long for the peer to take one, ends the connection. The connection cap applies to the
    /// threaded mode (the naive one never has more than one connection open).
    public func run(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics,
                    limits: ServerLimits) throws(EchoError) {
        try validate()
        // The socket may have been switched to non-blocking by someone else; this backend's
        // accept must block.
        try listener.setNonBlocking(false)
        switch options.mode {
        case .naive:
            try runNaive(listener: listener, stop: stop, statistics: statistics, limits: limits)
        case .threaded:
            try runThreaded(listener: listener, stop: stop, statistics: statistics, limits: limits)
        }
    }

    // MARK: - Naive: one client at a time

    private func runNaive(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics,
                          limits: ServerLimits) throws(EchoError) {
        let registry = try ConnectionRegistry(listener: listener.fileDescriptor, tracksThreads: false)
        // Registered before the first accept: if the stop was requested before `run` started, the
        // waker runs at once and the accept below fails straight away.
        stop.onStop { registry.stop(includingListener: true) }
        defer { registry.finish() }

        let bufferSize = options.bufferSize
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 64)
        defer { buffer.deallocate() }

        var counters = ServerStatistics()
        defer { statistics.publish(counters) }
        let publish: (inout ServerStatistics) -> Void = { statistics.publish($0) }

        while let client = try Self.acceptClient(listener.fileDescriptor, stop: stop, counters: &counters, report: publish) {
            counters[.connectionsAccepted] &+= 1
            statistics.publish(counters)
            if registry.admit(client) {
                Self.applyIdleTimeout(limits, to: client, counters: &counters)
                Self.serve(client, buffer: buffer, capacity: bufferSize, counters: &counters, report: publish)
                registry.remove(client)
            }
            _ = close(client)
            counters[.close] &+= 1
            counters[.connectionsClosed] &+= 1
            statistics.publish(counters)
        }
    }

    // MARK: - Threaded: one thread per connection

    private func runThreaded(listener: ListeningSocket, stop: StopSignal, statistics: LiveStatistics,
                             limits: ServerLimits) throws(EchoError) {
        let registry = try ConnectionRegistry(listener: listener.fileDescriptor, tracksThreads: true)
        let cap = limits.maxConnections ?? .max
        stop.onStop { registry.stop(includingListener: true) }
        defer { registry.finish() }

        let bufferSize = options.bufferSize
        // The accept loop's own counters, added to the shared ones after every accept.
        var counters = ServerStatistics()
        let flush: (inout ServerStatistics) -> Void = { delta in
            statistics.add(delta)
            delta = ServerStatistics()
        }

        var failure: EchoError?
        do throws(EchoError) {
            while true {
                if limits.overLimit == .pause && registry.openCount >= cap {
                    // At the cap: newcomers wait in the backlog until a connection thread ends.
                    counters[.acceptPauses] &+= 1
                    flush(&counters)
                    registry.waitForRoom(below: cap, stop: stop)
                }
                guard let client = try Self.acceptClient(listener.fileDescriptor, stop: stop, counters: &counters,
                                                         report: flush) else { break }
                if registry.openCount >= cap {
                    _ = close(client)  // --over-limit close
                    counters[.close] &+= 1
                    counters[.acceptsRefused] &+= 1
                    flush(&counters)
                    continue
                }
                counters[.connectionsAccepted] &+= 1
                Self.applyIdleTimeout(limits, to: client, counters: &counters)
                flush(&counters)
                guard registry.admit(client) else {
                    // The stop came between accept and now: its waker has already run.
                    _ = close(client)
                    counters[.close] &+= 1
                    counters[.connectionsClosed] &+= 1
                    break
                }
                let status = Self.startConnectionThread(
                    client, bufferSize: bufferSize, registry: registry, statistics: statistics)
                if status != 0 {
                    // No thread for this client (EAGAIN: thread or memory limit): turn it away and
                    // back off, as for a full descriptor table.
                    registry.remove(client)
                    _ = close(client)
                    registry.threadFinished()
                    counters[.close] &+= 1
                    counters[.connectionsClosed] &+= 1
                    counters[.acceptFailures] &+= 1
                    flush(&counters)
                    usleep(Self.backoffMicroseconds)
                }
            }
        } catch {
            failure = error
        }
        flush(&counters)

        // Wake every connection thread still blocked (a no-op when the stop waker already did),
        // then wait until each has closed its socket and added its counters.
        registry.stop(includingListener: false)
        registry.waitForThreads()
        if let failure { throw failure }
    }

    /// Starts a detached thread that serves `client` until it closes or the server stops.
    /// Returns `pthread_create`'s status.
    private static func startConnectionThread(_ client: Int32, bufferSize: Int, registry: ConnectionRegistry,
                                              statistics: LiveStatistics) -> Int32 {
        let work = Unmanaged.passRetained(ConnectionWork {
            _ = clinux_set_thread_name("echo-blocking")
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 64)
            var delta = ServerStatistics()
            serve(client, buffer: buffer, capacity: bufferSize, counters: &delta) { delta in
                statistics.add(delta)
                delta = ServerStatistics()
            }
            buffer.deallocate()
            registry.remove(client)
            _ = close(client)
            delta[.close] &+= 1
            delta[.connectionsClosed] &+= 1
            statistics.add(delta)
            registry.threadFinished()
        }).toOpaque()

        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, connectionStackSize)

        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { argument in
            let work = Unmanaged<ConnectionWork>.fromOpaque(argument!).takeRetainedValue()
            work.body()
            return nil
        }, work)
        if status != 0 {
            Unmanaged<ConnectionWork>.fromOpaque(work).release()
        }
        return status
    }

    // MARK: - Shared loops

    /// Accepts the next client, blocking. Returns `nil` once a stop is requested.
    ///
    /// Transient failures are retried; running out of descriptors or memory is counted in
    /// `acceptFailures` and retried after a short sleep. Any other failure is thrown.
    private static func acceptClient(_ listener: Int32, stop: StopSignal, counters: inout ServerStatistics,
                                     report: (inout ServerStatistics) -> Void) throws(EchoError) -> Int32? {
        while !stop.isRequested {
            let client = SystemCall.outcome { clinux_accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue)) }
            counters[.accept] &+= 1
            if !client.failed { return client.value }
            switch AcceptFailure(code: client.error) {
            case .transient:
                continue
            case .exhausted:
                counters[.acceptFailures] &+= 1
                report(&counters)
                usleep(backoffMicroseconds)
            case .backlogEmpty:
                // Only a listener made non-blocking behind our back (or given a receive timeout)
                // says this: wait a little rather than spin.
                usleep(backoffMicroseconds)
            case .listenerBroken:
                // A shut-down listener fails with EINVAL: that is the stop waker at work.
                if stop.isRequested { return nil }
                report(&counters)
                throw SystemCall.failure("accept", code: client.error)
            }
        }
        report(&counters)
        return nil
    }

    /// Gives `client` the idle timeout as `SO_RCVTIMEO` and `SO_SNDTIMEO`, when there is one.
    private static func applyIdleTimeout(_ limits: ServerLimits, to client: Int32, counters: inout ServerStatistics) {
        guard let nanoseconds = limits.idleTimeoutNanoseconds else { return }
        var timeout = timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000 / 1000))
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            _ = setsockopt(client, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
            counters[.other] &+= 1
        }
    }

    /// Echoes `client` until it closes its side, fails, stays silent past the idle timeout
    /// (a read or send that times out: `EAGAIN`), or is shut down by a stop. Does not close it.
    ///
    /// Every read that returns data is one request; `report` runs after each request is echoed.
    @inline(__always)
    private static func serve(_ client: Int32, buffer: UnsafeMutableRawPointer, capacity: Int,
                              counters: inout ServerStatistics, report: (inout ServerStatistics) -> Void) {
        while true {
            let outcome = SystemCall.outcome { read(client, buffer, capacity) }
            let received = outcome.value
            counters[.read] &+= 1
            if received == 0 { return }  // end of stream (or shut down by a stop)
            if received < 0 {
                if outcome.error == EINTR { continue }
                if outcome.error == EAGAIN { counters[.closedIdle] &+= 1 }  // SO_RCVTIMEO: idle
                // ECONNRESET, ETIMEDOUT and the like: this client is gone.
                report(&counters)
                return
            }
            counters[.requests] &+= 1
            counters[.bytesReceived] &+= UInt64(received)
            var offset = 0
            while offset < received {
                let outcome = SystemCall.outcome { send(client, buffer + offset, received - offset, Int32(MSG_NOSIGNAL)) }
                let sent = outcome.value
                counters[.write] &+= 1
                if sent > 0 {
                    offset += sent
                    counters[.bytesSent] &+= UInt64(sent)
                } else if outcome.error == EINTR {
                    continue
                } else {
                    if outcome.error == EAGAIN { counters[.closedIdle] &+= 1 }  // SO_SNDTIMEO: idle
                    // EPIPE, ECONNRESET (or a shut-down socket at stop): drop this client.
                    report(&counters)
                    return
                }
            }
            report(&counters)
        }
    }
}

/// The closure a connection thread runs, passed through `pthread_create`'s context pointer.
private final class ConnectionWork {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// The open client sockets and the state of the stop, shared by the accept loop, the connection
/// threads and the stop waker.
///
/// Every change happens under one mutex, so the waker never shuts down a descriptor that was
/// already closed (and maybe reused), and a client accepted while the stop runs is either shut
/// down by the waker or refused by ``admit(_:)``.
private final class ConnectionRegistry: Sendable {
    private struct State {
        /// Client sockets open now.
        var clients: Set<Int32> = []
        /// The stop has shut every client down; no more are admitted.
        var stopping = false
        /// The listening socket has been shut down.
        var listenerShutDown = false
        /// `run` has returned: the descriptors are no longer ours to touch.
        var finished = false
        /// Connection threads that have not finished.
        var threads = 0
        /// `run` waits for the threads: the last one to finish signals `drained`.
        var draining = false
        /// The accept loop waits for a connection to close (at the cap): the next thread to finish
        /// signals `room`.
        var waitingForRoom = false
    }

    private let state = Mutex(State())
    private let listener: Int32
    private let tracksThreads: Bool
    /// An eventfd the last connection thread writes once `run` waits for them (threaded mode).
    private let drained: Int32
    /// An eventfd a finishing connection thread writes when the accept loop waits at the cap.
    private let room: Int32

    init(listener: Int32, tracksThreads: Bool) throws(EchoError) {
        self.listener = listener
        self.tracksThreads = tracksThreads
        if tracksThreads {
            let fd = try SystemCall.run("eventfd") { eventfd(0, Int32(EFD_CLOEXEC)) }
            let roomFD = SystemCall.outcome { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) }
            guard !roomFD.failed else {
                _ = close(fd)
                throw SystemCall.failure("eventfd", code: roomFD.error)
            }
            drained = fd
            room = roomFD.value
        } else {
            drained = -1
            room = -1
        }
    }

    deinit {
        if drained >= 0 { _ = close(drained) }
        if room >= 0 { _ = close(room) }
    }

    /// Connections open now (threaded mode): admitted, and their thread has not closed the socket yet.
    var openCount: Int { state.withLock { $0.threads } }

    /// Blocks until fewer than `cap` connections are open, or the server stops (threaded mode).
    func waitForRoom(below cap: Int, stop: StopSignal) {
        while true {
            let full = state.withLock { state -> Bool in
                guard state.threads >= cap, !state.stopping else { return false }
                state.waitingForRoom = true
                return true
            }
            guard full else { return }
            var descriptors = [pollfd(fd: room, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: stop.fileDescriptor, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 2, -1)
            var value: UInt64 = 0
            _ = read(room, &value, MemoryLayout<UInt64>.size)
            if stop.isRequested { return }
        }
    }

    /// Records an accepted client (and, in threaded mode, the thread about to serve it).
    /// Returns `false` when the server is stopping: the caller closes the client.
    func admit(_ client: Int32) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.clients.insert(client)
            if tracksThreads { state.threads += 1 }
            return true
        }
    }

    /// Forgets a client, before its descriptor is closed.
    func remove(_ client: Int32) {
        _ = state.withLock { $0.clients.remove(client) }
    }

    /// Shuts down every open client, so blocked reads and sends return, and the listener when
    /// asked, so a blocked accept returns. Only the first call per socket acts.
    func stop(includingListener: Bool) {
        state.withLock { state in
            guard !state.finished else { return }
            if includingListener && !state.listenerShutDown {
                state.listenerShutDown = true
                _ = shutdown(listener, Int32(SHUT_RDWR))
            }
            if !state.stopping {
                state.stopping = true
                for client in state.clients { _ = shutdown(client, Int32(SHUT_RDWR)) }
            }
        }
    }

    /// A connection thread is done: its socket is closed and its counters added.
    func threadFinished() {
        let last = state.withLock { state -> Bool in
            state.threads -= 1
            if state.waitingForRoom {
                state.waitingForRoom = false
                var one: UInt64 = 1
                _ = write(room, &one, MemoryLayout<UInt64>.size)
            }
            return state.threads == 0 && state.draining
        }
        if last {
            var one: UInt64 = 1
            _ = write(drained, &one, MemoryLayout<UInt64>.size)
        }
    }

    /// Waits until every connection thread has finished. Call after ``stop(includingListener:)``,
    /// once no more threads are started.
    func waitForThreads() {
        guard tracksThreads else { return }
        let mustWait = state.withLock { state -> Bool in
            state.draining = true
            return state.threads > 0
        }
        guard mustWait else { return }
        var value: UInt64 = 0
        _ = SystemCall.outcome(retryingInterrupts: true) { read(drained, &value, MemoryLayout<UInt64>.size) }
    }

    /// `run` is returning: a later stop must not touch the listener or any client.
    func finish() {
        state.withLock { $0.finished = true }
    }
}
