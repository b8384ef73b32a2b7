#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring
import CLinux

/// The io_uring loop in the seed's design (`--uring-mode legacy`): one ring, one pool of provided
/// buffers, one thread.
///
/// Lives on the loop thread only; created and run by ``URingBackend/run(listener:stop:statistics:)``.
struct LegacyLoop: ~Copyable {
    private let ring: Ring
    private let pool: BufferPool
    private var connections = ConnectionTable<URingConnection>()
    private let listenerFD: Int32
    private let stopFD: Int32
    private let published: LiveStatistics
    private var statistics = ServerStatistics()

    private let completions = CompletionBatch()

    /// Connections waiting for a buffer, oldest first (linked through the table), or -1.
    private var starvedHead: Int32 = -1
    private var starvedTail: Int32 = -1
    /// Buffers in the kernel's pool as far as the completions seen so far tell: returns confirmed
    /// by a provide completion, minus those a receive completion took. An `ENOBUFS` seen while
    /// this is positive is stale (the pool was refilled after the kernel failed that receive).
    private var buffersInPool = 0

    private var stopping = false
    private var failure: EchoError?

    /// The provided-buffer group all receives select from.
    private static let bufferGroup: UInt16 = 1

    init(options: URingBackend.Options, listener: ListeningSocket, stop: StopSignal,
         statistics: LiveStatistics) throws(EchoError) {
        ring = try Ring(entries: options.ringEntries, parameters: options.setupParameters)
        pool = BufferPool(bufferSize: options.bufferSize, count: options.bufferCount)
        listenerFD = listener.fileDescriptor
        stopFD = stop.fileDescriptor
        published = statistics
    }

    /// Runs until the stop signal fires, then closes every connection.
    mutating func run() throws(EchoError) {
        ring.watchStopSignal(stopFD, enters: &statistics.syscalls.ioUringEnter)
        armAccept()
        provideBuffers(first: 0, count: UInt16(pool.count))
        while !stopping {
            do {
                try ring.submitAndWait(enters: &statistics.syscalls.ioUringEnter)
            } catch {
                failure = error
                break
            }
            drainCompletions()
            if starvedHead >= 0 && buffersInPool > 0 { wakeStarved() }
            published.publish(statistics)
        }
        closeAllConnections()
        published.publish(statistics)
        if let failure { throw failure }
    }

    // MARK: Completions

    /// Handles every completion that is ready.
    @inline(__always)
    private mutating func drainCompletions() {
        CompletionBatch.drain(ring.raw, through: completions.entries) { data, result, flags in
            handle(data, result: result, flags: flags)
        }
    }

    @inline(__always)
    private mutating func handle(_ data: UserData, result: Int32, flags: UInt32) {
        switch data.operation {
        case .recv: received(on: data.fd, result: result, flags: flags)
        case .send: sent(on: data.fd, result: result)
        case .provideBuffers: buffersReturned(count: data.buffer, result: result)
        case .accept: accepted(result: result)
        case .acceptRetry: if !stopping { armAccept() }
        case .stop: stopping = true
        case .ignored, nil: break
        }
    }

    @inline(__always)
    private mutating func received(on fd: Int32, result: Int32, flags: UInt32) {
        if result > 0 {
            let connection = connections[fd]
            // The kernel picked the buffer; echo it back from where it landed.
            buffersInPool &-= 1
            connection.pointee.sendBuffer = UInt16(truncatingIfNeeded: flags >> UInt32(IORING_CQE_BUFFER_SHIFT))
            connection.pointee.sendOffset = 0
            connection.pointee.sendLength = result
            statistics.requests &+= 1
            statistics.bytesReceived &+= UInt64(result)
            armSend(fd)
            return
        }
        // No data: a buffer, if the kernel attached one, goes straight back.
        if flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
            buffersInPool &-= 1
            provideBuffers(first: UInt16(truncatingIfNeeded: flags >> UInt32(IORING_CQE_BUFFER_SHIFT)), count: 1)
        }
        switch -result {
        case ENOBUFS: starve(fd)  // back-pressure: wait for a buffer to come back to the pool
        case EINTR, EAGAIN: armReceive(fd)
        default: closeConnection(fd)  // 0 is the peer's EOF; anything else is a broken connection
        }
    }

    @inline(__always)
    private mutating func sent(on fd: Int32, result: Int32) {
        let connection = connections[fd]
        if result > 0 {
            statistics.bytesSent &+= UInt64(result)
            connection.pointee.sendOffset &+= result
            if connection.pointee.sendOffset < connection.pointee.sendLength {
                armSend(fd)  // a short send: the rest goes next, never two sends at once
            } else {
                provideBuffers(first: connection.pointee.sendBuffer, count: 1)
                armReceive(fd)
            }
            return
        }
        if result == -EINTR || result == -EAGAIN {
            armSend(fd)
            return
        }
        provideBuffers(first: connection.pointee.sendBuffer, count: 1)
        closeConnection(fd)
    }

    private mutating func buffersReturned(count: UInt16, result: Int32) {
        guard result >= 0 else {
            failure = .system("IORING_OP_PROVIDE_BUFFERS", errno: -result)
            stopping = true
            return
        }
        buffersInPool &+= Int(count)
    }

    /// Gives every starved connection its receive back, oldest first, once buffers are in the pool.
    ///
    /// All of them, not one per buffer: the kernel selects a buffer before it looks for data, so
    /// `ENOBUFS` also comes back to connections that have nothing to read. Those park in the
    /// kernel's poll without holding a buffer; the ones with data race for the buffers, and the
    /// losers come back here. Runs once per loop turn, after the completions, so it sees every
    /// buffer returned in the turn whatever order the completions came in.
    private mutating func wakeStarved() {
        var fd = starvedHead
        starvedHead = -1
        starvedTail = -1
        while fd >= 0 {
            let connection = connections[fd]
            let next = connection.pointee.nextStarved
            connection.pointee.nextStarved = -1
            connection.pointee.isStarved = false
            armReceive(fd)
            fd = next
        }
    }

    private mutating func accepted(result: Int32) {
        if result >= 0 {
            let fd = result
            if stopping {
                _ = Glibc.close(fd)
                return
            }
            connections.reserve(fd)
            connections[fd].pointee = URingConnection(isOpen: true)
            statistics.connectionsAccepted &+= 1
            armReceive(fd)
            armAccept()
            return
        }
        switch -result {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            // Out of descriptors or memory: keep serving what is open, try again shortly.
            statistics.acceptFailures &+= 1
            ring.scheduleAcceptRetry(enters: &statistics.syscalls.ioUringEnter)
        case EBADF, EINVAL, ENOTSOCK, EOPNOTSUPP:
            if !stopping {
                failure = .system("accept", errno: -result)
                stopping = true
            }
        default:
            // ECONNABORTED, EINTR, a peer that left before we got to it, …
            if !stopping { armAccept() }
        }
    }

    // MARK: Connections

    private mutating func starve(_ fd: Int32) {
        let connection = connections[fd]
        connection.pointee.isStarved = true
        connection.pointee.nextStarved = -1
        if starvedTail >= 0 {
            connections[starvedTail].pointee.nextStarved = fd
        } else {
            starvedHead = fd
        }
        starvedTail = fd
    }

    private mutating func closeConnection(_ fd: Int32) {
        connections[fd].pointee.isOpen = false
        _ = Glibc.close(fd)
        statistics.syscalls.close &+= 1
        statistics.connectionsClosed &+= 1
    }

    private mutating func closeAllConnections() {
        // Cancel everything in flight first, so no request still refers to a descriptor.
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.isOpen {
            closeConnection(fd)
        }
    }

    // MARK: Submissions

    @inline(__always)
    private mutating func nextSubmission() -> UnsafeMutablePointer<io_uring_sqe> {
        ring.submission(enters: &statistics.syscalls.ioUringEnter)
    }

    @inline(__always)
    private mutating func armReceive(_ fd: Int32) {
        let sqe = nextSubmission()
        io_uring_prep_recv(sqe, fd, nil, pool.bufferSize, 0)
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = Self.bufferGroup
        sqe.pointee.user_data = UserData(.recv, fd: fd).rawValue
    }

    @inline(__always)
    private mutating func armSend(_ fd: Int32) {
        let connection = connections[fd].pointee
        let sqe = nextSubmission()
        let start = pool.address(of: connection.sendBuffer) + Int(connection.sendOffset)
        io_uring_prep_send(sqe, fd, start, Int(connection.sendLength - connection.sendOffset), Int32(MSG_NOSIGNAL))
        sqe.pointee.user_data = UserData(.send, fd: fd, buffer: connection.sendBuffer).rawValue
    }

    @inline(__always)
    private mutating func provideBuffers(first: UInt16, count: UInt16) {
        let sqe = nextSubmission()
        io_uring_prep_provide_buffers(sqe, pool.address(of: first), Int32(pool.bufferSize), Int32(count),
                                      Int32(Self.bufferGroup), Int32(first))
        sqe.pointee.user_data = UserData(.provideBuffers, buffer: count).rawValue
    }

    private mutating func armAccept() {
        let sqe = nextSubmission()
        io_uring_prep_accept(sqe, listenerFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        sqe.pointee.user_data = UserData(.accept).rawValue
    }
}
