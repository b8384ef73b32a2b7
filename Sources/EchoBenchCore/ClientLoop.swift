import Backend
import CLinux
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// One event loop of the load generator: its share of the connections, on one thread.
///
/// A noncopyable value confined to its thread, like the server's `EpollLoop`: no reference
/// counting, no locks, no allocation once connected. Connections live in one contiguous table
/// indexed by their position in the loop's share, which is also what `epoll_event.data` carries.
/// Messages are generated into, and echoes read into, three buffers the loop shares across its
/// connections (see ``Payload``); request times live in one ring per connection, carved out of
/// one allocation.
///
/// The loop runs in two phases, each driven by the coordinator (``BenchmarkRun``):
/// 1. ``connectAll(timeout:)``: non-blocking connects, a bounded number in flight at a time;
/// 2. ``run(runStart:warmupEnd:windowEnd:)``: the mode's traffic, until `windowEnd` (`--rate`:
///    and until the requests due in the window are answered).
///
/// A loop made for idle connections (``BenchmarkRun`` and `--idle-helper`) only connects, holds
/// and finally checks them (``checkIdle()``).
struct ClientLoop: ~Copyable {
    /// Events taken per `epoll_wait`.
    static let maxEvents = 1024
    /// Connects in progress at once, so a server that accepts slowly is not flooded with SYNs.
    static let connectsInFlight = 256
    /// The most bytes one `send` or `read` moves: the size of the shared buffers.
    static let chunkSize = 64 << 10
    /// Latencies above this (in nanoseconds) are recorded as this.
    static let latencyLimit: UInt64 = 60_000_000_000
    /// `--stream`: latency samples (one per send) a connection has in flight at most.
    static let streamSamples = 16
    /// Flags for every `send`: no `SIGPIPE` when the peer has gone.
    static let sendFlags = Int32(MSG_NOSIGNAL)
    static let readable = EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue
    static let writable = EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue

    let epollDescriptor: Int32
    let address: SocketAddress
    let mode: BenchmarkMode
    /// Bytes per message.
    let length: Int
    /// `length`, for byte-position arithmetic.
    let messageLength: UInt64
    /// Bytes moved per call at most: `min(length, chunkSize)` in the closed modes, `chunkSize` when
    /// a send or read may span messages.
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
    /// Requests outstanding longer than this (nanoseconds) at the window's end are stalled;
    /// `--rate` waits this long after the window for the requests due in it.
    let stallThreshold: UInt64
    /// Request times (issue, or due, nanoseconds), `1 << ringShift` per connection; stream mode:
    /// the times of its latency samples.
    let times: UnsafeMutablePointer<UInt64>
    /// Stream mode: the byte position each latency sample waits for.
    let samplePositions: UnsafeMutablePointer<UInt64>
    let ringShift: Int
    let ringMask: UInt64
    /// Idle connections per source address (127.0.0.2 onwards, by identifier), 0 to let the
    /// kernel choose.
    let perSource: Int
    /// This loop's number, and how many loops there are.
    let loopIndex: Int
    let loops: Int

    /// What the loop counts: requests, latencies, errors, and the modes' figures.
    var tally = LoopResult.empty
    /// The `errno` of the first failed connect, 0 if none failed.
    var firstConnectError: Int32 = 0
    /// Connections in the ``ClientConnection/State/active`` state (churn: and reconnecting).
    var active = 0
    /// When the warm-up ends and the window begins (monotonic nanoseconds).
    var warmupEnd: UInt64 = .max
    /// When the window ends.
    var windowEnd: UInt64 = .max
    /// Whether an echo completed after ``windowEnd``: the loop stops after this batch.
    var windowClosed = false
    /// What the modes keep besides the connections (see ``ModeState``).
    var modeState: ModeState

    /// Creates the epoll instance and allocates everything the loop will need.
    ///
    /// - Parameters:
    ///   - identifiers: the connections' numbers across all loops (idle loops: across the idle
    ///     connections, which picks their source address).
    ///   - loopIndex: this loop's number of `configuration.threads`.
    ///   - idle: a loop for idle connections: no request times.
    ///   - perSource: idle connections per source address, 0 for none.
    init(configuration: BenchmarkConfiguration, address: SocketAddress, identifiers: Range<Int>,
         loopIndex: Int = 0, idle: Bool = false, perSource: Int = 0) throws(EchoError) {
        let epollDescriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollDescriptor >= 0 else { throw .system("epoll_create1", errno: errno) }
        self.epollDescriptor = epollDescriptor
        self.address = address
        mode = configuration.mode
        length = configuration.length
        messageLength = UInt64(configuration.length)
        chunk = mode.spansMessages ? Self.chunkSize : min(configuration.length, Self.chunkSize)
        count = identifiers.count
        stallThreshold = ProcessClock.nanoseconds(configuration.stallThreshold)
        self.perSource = perSource
        self.loopIndex = loopIndex
        loops = configuration.threads
        modeState = ModeState(configuration: configuration, loopIndex: loopIndex)
        connections = .allocate(capacity: max(count, 1))
        connections.initialize(repeating: ClientConnection(), count: max(count, 1))
        for index in 0..<count {
            connections[index].identifier = UInt32(truncatingIfNeeded: identifiers.lowerBound + index)
        }
        let capacity = idle ? 1 : mode.ringCapacity
        ringShift = capacity.trailingZeroBitCount
        ringMask = UInt64(capacity - 1)
        times = .allocate(capacity: max(count, 1) * capacity)
        times.initialize(repeating: 0, count: max(count, 1) * capacity)
        let samples = mode.keepsSamplePositions ? max(count, 1) * capacity : 1
        samplePositions = .allocate(capacity: samples)
        samplePositions.initialize(repeating: 0, count: samples)
        events = .allocate(capacity: Self.maxEvents)
        // Generated words may start up to 7 bytes before the chunk and end 7 after it.
        let bufferSize = (chunk + 16 + 63) & ~63
        sendBuffer = .allocate(byteCount: bufferSize, alignment: 64)
        receiveBuffer = .allocate(byteCount: bufferSize, alignment: 64)
        expectedBuffer = .allocate(byteCount: bufferSize, alignment: 64)
    }

    deinit {
        for index in 0..<count where connections[index].descriptor >= 0 {
            _ = Glibc.close(connections[index].descriptor)
        }
        _ = Glibc.close(epollDescriptor)
        connections.deallocate()
        times.deallocate()
        samplePositions.deallocate()
        events.deallocate()
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
        expectedBuffer.deallocate()
    }

    /// A latency histogram: 1 ns to ``latencyLimit``, three significant digits.
    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: latencyLimit,
                          numberOfSignificantValueDigits: .three)
    }

    // MARK: Shared helpers

    /// Where the time of message `message` of connection `slot` is kept.
    @inline(__always)
    func ring(_ slot: Int, _ message: UInt64) -> Int {
        (slot << ringShift) | Int(truncatingIfNeeded: message & ringMask)
    }

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

    /// Waits for events until `deadline` (monotonic nanoseconds, to the nanosecond: `epoll_pwait2`),
    /// and serves them with `serve`. Returns the number of events, 0 on timeout or `EINTR`, or -1
    /// when `epoll_pwait2` failed otherwise.
    @inline(__always)
    mutating func wait(until deadline: UInt64, now: UInt64,
                       _ serve: (inout ClientLoop, Int, UInt32) -> Void) -> Int {
        let remaining = deadline > now ? deadline - now : 0
        var timeout = timespec(tv_sec: Int(remaining / 1_000_000_000), tv_nsec: Int(remaining % 1_000_000_000))
        let ready = epoll_pwait2(epollDescriptor, events, Int32(Self.maxEvents), &timeout, nil)
        if ready < 0 { return errno == EINTR ? 0 : -1 }
        var index = 0
        while index < Int(ready) {
            let event = events[index]
            serve(&self, Int(truncatingIfNeeded: event.data.u64), event.events)
            index += 1
        }
        return Int(ready)
    }
}
