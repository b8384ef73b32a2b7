import Backend
import CLinux
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// What one loop did, handed to the coordinator once it has stopped.
struct LoopResult: Sendable {
    /// Requests completed inside the measured window.
    var requests: UInt64 = 0
    /// Their latencies in nanoseconds.
    var latency: Histogram<UInt64>
    var errors = ErrorCounts()
    var established = 0
}

/// One event loop of the load generator: its share of the connections, on one thread.
///
/// A noncopyable value confined to its thread, like the server's `EpollLoop`: no reference
/// counting, no locks, no allocation once connected. Connections live in one contiguous table
/// indexed by their position in the loop's share, which is also what `epoll_event.data` carries.
/// Messages are generated into, and echoes read into, three buffers the loop shares across its
/// connections (see ``Payload``).
///
/// The loop runs in two phases, each driven by the coordinator (``BenchmarkRun``):
/// 1. ``connectAll(timeout:)``: non-blocking connects, a bounded number in flight at a time;
/// 2. ``run(warmupEnd:windowEnd:)``: the closed loop, until `windowEnd`.
struct ClientLoop: ~Copyable {
    /// Events taken per `epoll_wait`.
    static let maxEvents = 1024
    /// Connects in progress at once, so a server that accepts slowly is not flooded with SYNs.
    static let connectsInFlight = 256
    /// The most bytes one `send` or `read` moves: the size of the shared buffers.
    static let chunkSize = 64 << 10
    /// Latencies above this (in nanoseconds) are recorded as this.
    static let latencyLimit: UInt64 = 60_000_000_000
    /// Flags for every `send`: no `SIGPIPE` when the peer has gone.
    static let sendFlags = Int32(MSG_NOSIGNAL)
    static let readable = EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue
    static let writable = EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue

    let epollDescriptor: Int32
    let address: SocketAddress
    /// Bytes per message.
    let length: Int
    /// Bytes moved per call: `min(length, chunkSize)`.
    let chunk: Int
    /// Connections in this loop's share.
    let count: Int
    let connections: UnsafeMutablePointer<ClientConnection>
    let events: UnsafeMutablePointer<epoll_event>
    /// Where outgoing words are generated.
    let sendBuffer: UnsafeMutableRawPointer
    /// Where echoes are read.
    let receiveBuffer: UnsafeMutableRawPointer
    /// Where the words an echo must match are generated.
    let expectedBuffer: UnsafeMutableRawPointer
    /// Requests outstanding longer than this (nanoseconds) at the window's end are stalled.
    let stallThreshold: UInt64

    /// Latencies of the requests completed in the window, in nanoseconds.
    var latency: Histogram<UInt64>
    /// Requests completed in the window.
    var requests: UInt64 = 0
    var errors = ErrorCounts()
    /// Connections established in the connect phase.
    var established = 0
    /// The `errno` of the first failed connect, 0 if none failed.
    var firstConnectError: Int32 = 0
    /// Connections in the ``ClientConnection/State/active`` state.
    var active = 0
    /// When the warm-up ends and the window begins (monotonic nanoseconds).
    var warmupEnd: UInt64 = .max
    /// When the window ends.
    var windowEnd: UInt64 = .max
    /// Whether an echo completed after ``windowEnd``: the loop stops after this batch.
    var windowClosed = false

    /// Creates the epoll instance and allocates everything the loop will need.
    ///
    /// - Parameter identifiers: the connections' numbers across all loops.
    init(configuration: BenchmarkConfiguration, address: SocketAddress, identifiers: Range<Int>) throws(EchoError) {
        let epollDescriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollDescriptor >= 0 else { throw .system("epoll_create1", errno: errno) }
        self.epollDescriptor = epollDescriptor
        self.address = address
        length = configuration.length
        chunk = min(configuration.length, Self.chunkSize)
        count = identifiers.count
        stallThreshold = ProcessClock.nanoseconds(configuration.stallThreshold)
        connections = .allocate(capacity: max(count, 1))
        connections.initialize(repeating: ClientConnection(), count: max(count, 1))
        for index in 0..<count {
            connections[index].identifier = UInt32(truncatingIfNeeded: identifiers.lowerBound + index)
        }
        events = .allocate(capacity: Self.maxEvents)
        // Generated words may start up to 7 bytes before the chunk and end 7 after it.
        let bufferSize = (chunk + 16 + 63) & ~63
        sendBuffer = .allocate(byteCount: bufferSize, alignment: 64)
        receiveBuffer = .allocate(byteCount: bufferSize, alignment: 64)
        expectedBuffer = .allocate(byteCount: bufferSize, alignment: 64)
        latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: Self.latencyLimit,
                                    numberOfSignificantValueDigits: .three)
    }

    deinit {
        for index in 0..<count where connections[index].descriptor >= 0 {
            _ = Glibc.close(connections[index].descriptor)
        }
        _ = Glibc.close(epollDescriptor)
        connections.deallocate()
        events.deallocate()
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
        expectedBuffer.deallocate()
    }

    /// What the loop counted, for the coordinator.
    var result: LoopResult {
        LoopResult(requests: requests, latency: latency, errors: errors, established: established)
    }

    // MARK: Connect phase

    /// Connects every connection of the share, at most ``connectsInFlight`` at a time.
    ///
    /// Gives up on the connects still pending when none has completed for `timeout` nanoseconds,
    /// and stops starting new ones once the server refuses or the process runs out of descriptors,
    /// ports or memory. Every connection not established is counted in ``errors``' `connect`.
    mutating func connectAll(timeout: UInt64) {
        var next = 0
        var pending = 0
        var stopStarting = false
        var deadline = ProcessClock.monotonic() &+ timeout
        while true {
            while !stopStarting && pending < Self.connectsInFlight && next < count {
                let code = startConnect(next)
                next += 1
                if code == EINPROGRESS { pending += 1 } else if code != 0 && Self.endsConnecting(code) { stopStarting = true }
            }
            if pending == 0 && (stopStarting || next == count) { break }
            let now = ProcessClock.monotonic()
            if now >= deadline {
                abandonPendingConnects(next: next, code: ETIMEDOUT)
                break
            }
            let ready = epoll_wait(epollDescriptor, events, Int32(Self.maxEvents), ProcessClock.milliseconds(from: now, to: deadline))
            if ready < 0 {
                let code = errno
                if code == EINTR { continue }
                abandonPendingConnects(next: next, code: code)
                break
            }
            var index = 0
            while index < Int(ready) {
                let slot = Int(truncatingIfNeeded: events[index].data.u64)
                index += 1
                guard connections[slot].state == .connecting else { continue }
                let code = finishConnect(slot)
                pending -= 1
                deadline = ProcessClock.monotonic() &+ timeout
                if code != 0 && Self.endsConnecting(code) { stopStarting = true }
            }
        }
        // Connections never tried count as failed connects too: connect = asked - established.
        errors.connect &+= UInt64(count - next)
    }

    /// Errors after which starting more connects is pointless.
    private static func endsConnecting(_ code: Int32) -> Bool {
        code == ECONNREFUSED || code == EMFILE || code == ENFILE || code == EADDRNOTAVAIL
            || code == ENOBUFS || code == ENOMEM || code == ENETUNREACH || code == EHOSTUNREACH
    }

    /// Opens connection `slot`'s socket and starts its connect. Returns 0 when it connected at
    /// once, `EINPROGRESS` when it is under way, or the `errno` it failed with.
    private mutating func startConnect(_ slot: Int) -> Int32 {
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let descriptor = socket(address.family, flags, 0)
        guard descriptor >= 0 else {
            let code = errno
            failConnect(slot, code)
            return code
        }
        connections[slot].descriptor = descriptor
        var enabled: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &enabled, socklen_t(MemoryLayout<Int32>.size))
        var code = address.connect(descriptor)
        if code == 0 {
            code = markEstablished(slot)
            return code
        }
        guard code == EINPROGRESS || code == EINTR else {
            failConnect(slot, code)
            return code
        }
        connections[slot].state = .connecting
        let registered = control(EPOLL_CTL_ADD, slot, events: EPOLLOUT.rawValue)
        if registered != 0 {
            failConnect(slot, registered)
            return registered
        }
        return EINPROGRESS
    }

    /// Reads the outcome of connection `slot`'s connect. Returns 0 or the `errno` it failed with.
    private mutating func finishConnect(_ slot: Int) -> Int32 {
        var code: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(connections[slot].descriptor, SOL_SOCKET, SO_ERROR, &code, &size) != 0 { code = errno }
        guard code == 0 else {
            failConnect(slot, code)
            return code
        }
        connections[slot].state = .established
        established += 1
        let modified = control(EPOLL_CTL_MOD, slot, events: EPOLLIN.rawValue)
        if modified != 0 {
            established -= 1
            failConnect(slot, modified)
            return modified
        }
        return 0
    }

    /// Registers connection `slot`, connected at once, for reading.
    private mutating func markEstablished(_ slot: Int) -> Int32 {
        let code = control(EPOLL_CTL_ADD, slot, events: EPOLLIN.rawValue)
        guard code == 0 else {
            failConnect(slot, code)
            return code
        }
        connections[slot].state = .established
        established += 1
        return 0
    }

    /// Counts a failed connect and closes its socket.
    private mutating func failConnect(_ slot: Int, _ code: Int32) {
        errors.connect &+= 1
        if firstConnectError == 0 { firstConnectError = code }
        closeSocket(slot)
    }

    /// Gives up every connect still under way among the first `next` connections.
    private mutating func abandonPendingConnects(next: Int, code: Int32) {
        for slot in 0..<next where connections[slot].state == .connecting {
            failConnect(slot, code)
        }
    }

    // MARK: Shared helpers

    /// `epoll_ctl` for connection `slot`. Returns 0, or the `errno` it failed with.
    @inline(__always)
    func control(_ operation: Int32, _ slot: Int, events: UInt32) -> Int32 {
        var event = epoll_event(events: events, data: epoll_data_t(u64: UInt64(slot)))
        return epoll_ctl(epollDescriptor, operation, connections[slot].descriptor, &event) == 0 ? 0 : errno
    }

    /// Closes connection `slot`'s socket (which also takes it out of the epoll set).
    @inline(__always)
    mutating func closeSocket(_ slot: Int) {
        let connection = connections + slot
        if connection.pointee.descriptor >= 0 {
            _ = Glibc.close(connection.pointee.descriptor)
            connection.pointee.descriptor = -1
        }
        connection.pointee.state = .closed
    }
}
