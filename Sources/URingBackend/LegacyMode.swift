#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// The seed's design (`--uring-mode legacy`), kept as the baseline: single-shot accept and
/// receive, one pool of buffers handed to the kernel with `IORING_OP_PROVIDE_BUFFERS`.
///
/// Each connection has exactly one request in flight at any time: a `recv` that lets the kernel
/// pick a buffer from the pool, then a `send` of that buffer (resubmitted until every byte is
/// gone), then the buffer goes back to the pool in the same submission as the next `recv`: three
/// submissions per echo. `ENOBUFS` is back-pressure: the connection waits in the starved queue and
/// gets its `recv` back once buffers return.
struct LegacyMode: LoopMode, ~Copyable {
    private let pool: BufferPool
    private var connections = ConnectionTable<LegacyConnection>()
    private var starved = StarvedQueue()
    /// Buffers in the kernel's pool as far as the completions seen so far tell: returns confirmed
    /// by a provide completion, minus those a receive completion took. An `ENOBUFS` seen while
    /// this is positive is stale (the pool was refilled after the kernel failed that receive).
    private var buffersInPool = 0

    /// The provided-buffer group all receives select from.
    private static var bufferGroup: UInt16 { 1 }

    init(options: URingBackend.Options, ring: borrowing Ring) throws(EchoError) {
        pool = BufferPool(bufferSize: options.bufferSize, count: options.bufferCount)
    }

    mutating func start(_ loop: inout LoopContext) {
        provideBuffers(first: 0, count: UInt16(pool.count), &loop)
    }

    /// The seed's design: a single-shot accept, armed again after each connection.
    static var acceptsOneAtATime: Bool { true }

    mutating func adopt(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        connections.reserve(fd)
        connections[fd].pointee = .accepted
        armReceive(fd, &loop)
        return true
    }

    // MARK: Completions

    @inline(__always)
    mutating func received(on fd: Int32, result: Int32, flags: UInt32, _ loop: inout LoopContext) {
        if result > 0 {
            // The kernel picked the buffer; echo it back from where it landed.
            buffersInPool &-= 1
            loop.idle.touch(fd)
            connections[fd].pointee.startSending(UInt16(truncatingIfNeeded: flags >> UInt32(IORING_CQE_BUFFER_SHIFT)),
                                                 length: result)
            loop.statistics[.requests] &+= 1
            loop.statistics[.bytesReceived] &+= UInt64(result)
            armSend(fd, &loop)
            return
        }
        // No data: a buffer, if the kernel attached one, goes straight back.
        if flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
            buffersInPool &-= 1
            provideBuffers(first: UInt16(truncatingIfNeeded: flags >> UInt32(IORING_CQE_BUFFER_SHIFT)), count: 1, &loop)
        }
        switch -result {
        case ENOBUFS:
            // Back-pressure: wait for a buffer to come back to the pool.
            connections[fd].pointee.state = .starved
            starved.append(fd, in: connections)
        case EINTR, EAGAIN: armReceive(fd, &loop)
        default: close(fd, &loop)  // 0 is the peer's EOF; anything else is a broken connection
        }
    }

    @inline(__always)
    mutating func sent(on fd: Int32, buffer: UInt16, result: Int32, flags: UInt32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        if result > 0 {
            loop.idle.touch(fd)
            loop.statistics[.bytesSent] &+= UInt64(result)
            if connection.pointee.sent(result) {
                armSend(fd, &loop)  // a short send: the rest goes next, never two sends at once
            } else {
                provideBuffers(first: connection.pointee.sendBuffer, count: 1, &loop)
                armReceive(fd, &loop)
            }
            return
        }
        if result == -EINTR || result == -EAGAIN {
            armSend(fd, &loop)
            return
        }
        provideBuffers(first: connection.pointee.sendBuffer, count: 1, &loop)
        close(fd, &loop)
    }

    mutating func buffersProvided(count: UInt16, result: Int32, _ loop: inout LoopContext) {
        guard result >= 0 else {
            loop.fail(SystemCall.failure("IORING_OP_PROVIDE_BUFFERS", result: result))
            return
        }
        buffersInPool &+= Int(count)
    }

    /// Gives every starved connection its receive back, oldest first, once buffers are in the
    /// pool (see ``StarvedQueue`` for why all of them).
    mutating func endTurn(_ loop: inout LoopContext) {
        guard !starved.isEmpty && buffersInPool > 0 else { return }
        var members = starved.removeAll()
        while let fd = members.next(in: connections) {
            connections[fd].pointee.state = .receiving
            armReceive(fd, &loop)
        }
    }

    // MARK: Connections

    /// Closes at once: a request still in flight is cancelled when the ring is torn down, and
    /// the pool it may write into lives until then.
    mutating func closeAll(_ loop: inout LoopContext) {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.state != .closed {
            close(fd, &loop)
        }
    }

    /// Ends a connection silent past the idle timeout: its one request in flight (or, when it is
    /// starved, the receive it gets back) sees the shutdown and closes it.
    mutating func closeIdle(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        guard Int(fd) < connections.capacity, connections[fd].pointee.state != .closed else { return false }
        loop.shutDown(Descriptor(fd, .ordinary))
        return true
    }

    private mutating func close(_ fd: Int32, _ loop: inout LoopContext) {
        connections[fd].pointee.state = .closed
        loop.close(Descriptor(fd, .ordinary))
        loop.statistics[.connectionsClosed] &+= 1
    }

    // MARK: Submissions

    @inline(__always)
    private func armReceive(_ fd: Int32, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_recv(sqe, fd, nil, pool.bufferSize, 0)
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = Self.bufferGroup
        sqe.pointee.user_data = UserData(.recv, fd: fd).rawValue
    }

    @inline(__always)
    private func armSend(_ fd: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd].pointee
        let sqe = loop.submission()
        let start = pool.address(of: connection.sendBuffer) + Int(connection.sendOffset)
        io_uring_prep_send(sqe, fd, start, Int(connection.sendLength - connection.sendOffset), Int32(MSG_NOSIGNAL))
        sqe.pointee.user_data = UserData(.send, fd: fd, buffer: connection.sendBuffer).rawValue
    }

    @inline(__always)
    private func provideBuffers(first: UInt16, count: UInt16, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_provide_buffers(sqe, pool.address(of: first), Int32(pool.bufferSize), Int32(count),
                                      Int32(Self.bufferGroup), Int32(first))
        sqe.pointee.user_data = UserData(.provideBuffers, buffer: count).rawValue
    }
}
