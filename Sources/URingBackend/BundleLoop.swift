#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// The io_uring loop with receive bundles (`--bundle`, Linux 6.10): one multishot accept, and per
/// connection one multishot receive with `IORING_RECVSEND_BUNDLE` on a provided-buffer ring of the
/// connection's own (see ``ConnectionBufferRing`` for why not the shared one), so one completion
/// may bring several buffers' worth of a stream; a send gathers every filled buffer into one
/// `sendmsg`, and each buffer goes back into the ring once sent.
///
/// The price is memory: each connection holds ``ConnectionBufferRing/count`` buffers of its own
/// while it is open, idle or not, and registering and unregistering its ring costs two system
/// calls per connection. Back-pressure is per connection for free: a peer that does not read
/// leaves its buffers queued, its receive ends with `ENOBUFS`, and nobody else is affected.
///
/// Optional, as in the multishot loop: `DEFER_TASKRUN` (with `SINGLE_ISSUER`) or SQPOLL.
struct BundleLoop: ~Copyable {
    private let ring: Ring
    private var connections = ConnectionTable<BundleConnection>()
    private let completions = CompletionBatch()
    private let bufferSize: Int

    private let listenerFD: Int32
    private let stopFD: Int32
    private let published: LiveStatistics
    private var statistics = ServerStatistics()
    private var stopping = false
    private var open = 0

    init(options: URingBackend.Options, listener: ListeningSocket, stop: StopSignal,
         statistics: LiveStatistics) throws(EchoError) {
        ring = try Ring(entries: options.ringEntries, parameters: options.setupParameters)
        bufferSize = options.bufferSize
        listenerFD = listener.fileDescriptor
        stopFD = stop.fileDescriptor
        published = statistics
    }

    /// Runs until the stop signal fires, then closes every connection.
    mutating func run() throws(EchoError) {
        ring.watchStopSignal(stopFD, enters: &statistics.syscalls.ioUringEnter)
        armAccept()
        while !stopping {
            try ring.submitAndWait(enters: &statistics.syscalls.ioUringEnter)
            drainCompletions()
            published.publish(statistics)
        }
        closeAllConnections()
        published.publish(statistics)
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
        case .accept: accepted(result: result, flags: flags)
        case .acceptRetry: if !stopping { armAccept() }
        case .stop: stopping = true
        case .provideBuffers, .ignored, nil: break
        }
    }

    @inline(__always)
    private mutating func received(on fd: Int32, result: Int32, flags: UInt32) {
        let connection = connections[fd]
        let more = flags & UInt32(IORING_CQE_F_MORE) != 0
        if !more { connection.pointee.isReceiving = false }
        if flags & UInt32(IORING_CQE_F_BUFFER) != 0 && result > 0, let buffers = connection.pointee.buffers {
            // The bundle is the run of ring positions from `received` on: whole entries, each as
            // long as the kernel left it, until the bytes are accounted for.
            var left = result
            var position = connection.pointee.received
            while left > 0 {
                let length = buffers.entryLength(at: position)
                let filled = min(left, length > 0 ? length : Int32(bufferSize))
                buffers.filled[Int(Int32(position) & ConnectionBufferRing.mask)] = filled
                left &-= filled
                position &+= 1
            }
            connection.pointee.received = position
            if !connection.pointee.isClosing {
                statistics.requests &+= 1
                statistics.bytesReceived &+= UInt64(result)
                if !connection.pointee.isSending { armSend(fd) }
            }
        }
        if more { return }
        if result == 0 {
            connection.pointee.peerClosed = true
        } else if result < 0 {
            switch -result {
            case ENOBUFS:
                // Every buffer waits to be sent; the send that returns one re-arms the receive.
                if !connection.pointee.isClosing { connection.pointee.isStarved = true }
            case ECANCELED, EINTR, EAGAIN:
                break
            default:
                beginClosing(fd)
            }
        } else if !connection.pointee.isClosing {
            armReceive(fd)  // ended with data (CQ pressure): keep receiving
        }
        if connection.pointee.isStarved && connection.pointee.queued < ConnectionBufferRing.count
            && !connection.pointee.isClosing && !connection.pointee.peerClosed {
            // Buffers came back before the ENOBUFS completion was handled.
            connection.pointee.isStarved = false
            armReceive(fd)
        }
        closeIfFinished(fd)
    }

    @inline(__always)
    private mutating func sent(on fd: Int32, result: Int32) {
        let connection = connections[fd]
        connection.pointee.isSending = false
        guard let buffers = connection.pointee.buffers else { return }
        if result > 0 && !connection.pointee.isClosing {
            statistics.bytesSent &+= UInt64(result)
            // The send took the head's unsent bytes and whole buffers after it; each one fully
            // sent goes back to the ring, in order.
            var remaining = result
            var returned = false
            while remaining > 0 {
                let id = UInt16(Int32(connection.pointee.sent) & ConnectionBufferRing.mask)
                let unsent = buffers.filled[Int(id)] &- connection.pointee.sendOffset
                if remaining < unsent {
                    connection.pointee.sendOffset &+= remaining
                    break
                }
                remaining &-= unsent
                connection.pointee.sendOffset = 0
                connection.pointee.sent &+= 1
                buffers.recycle(id)
                returned = true
            }
            if connection.pointee.queued > 0 { armSend(fd) }
            if returned && connection.pointee.isStarved && !connection.pointee.isReceiving
                && !connection.pointee.peerClosed {
                connection.pointee.isStarved = false
                armReceive(fd)
            }
            closeIfFinished(fd)
            return
        }
        if result == -EINTR || result == -EAGAIN {
            armSend(fd)
            return
        }
        beginClosing(fd)  // the peer is gone (EPIPE, ECONNRESET), or the connection is closing
        closeIfFinished(fd)
    }

    private mutating func accepted(result: Int32, flags: UInt32) {
        guard let fd = ring.multishotAcceptCompleted(result: result, flags: flags, listener: listenerFD,
                                                     direct: false, stopping: stopping,
                                                     statistics: &statistics) else { return }
        // The ring's buffer group is the descriptor: 16 bits.
        guard !stopping, fd < Int32(UInt16.max) else {
            if !stopping { statistics.acceptFailures &+= 1 }
            _ = Glibc.close(fd)
            statistics.syscalls.close &+= 1
            return
        }
        let buffers = ConnectionBufferRing(bufferSize: bufferSize)
        let status = buffers.register(on: ring, group: UInt16(fd))
        statistics.syscalls.other &+= 1
        guard status == 0 else {
            buffers.deallocate()
            statistics.acceptFailures &+= 1
            _ = Glibc.close(fd)
            statistics.syscalls.close &+= 1
            return
        }
        connections.reserve(fd)
        var connection = BundleConnection()
        connection.isOpen = true
        connection.buffers = buffers
        connections[fd].pointee = connection
        open += 1
        statistics.connectionsAccepted &+= 1
        armReceive(fd)
    }

    // MARK: Connections

    private mutating func beginClosing(_ fd: Int32) {
        let connection = connections[fd]
        guard !connection.pointee.isClosing else { return }
        connection.pointee.isClosing = true
        if connection.pointee.isReceiving {
            let sqe = ring.submission(enters: &statistics.syscalls.ioUringEnter)
            io_uring_prep_cancel64(sqe, UserData(.recv, fd: fd).rawValue, 0)
            sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
            sqe.pointee.user_data = UserData(.ignored, fd: fd).rawValue
        }
    }

    /// Closes the connection once it is done (broken, or the peer closed and every byte is sent)
    /// and nothing of it is in flight: its ring is unregistered and its buffers freed first.
    private mutating func closeIfFinished(_ fd: Int32) {
        let connection = connections[fd]
        guard connection.pointee.isOpen, !connection.pointee.isSending, !connection.pointee.isReceiving else { return }
        guard connection.pointee.isClosing || (connection.pointee.peerClosed && connection.pointee.queued == 0) else { return }
        close(fd)
    }

    private mutating func close(_ fd: Int32) {
        let connection = connections[fd]
        connection.pointee.isOpen = false
        if let buffers = connection.pointee.buffers {
            _ = io_uring_unregister_buf_ring(ring.raw, Int32(fd))
            statistics.syscalls.other &+= 1
            buffers.deallocate()
            connection.pointee.buffers = nil
        }
        _ = Glibc.close(fd)
        statistics.syscalls.close &+= 1
        statistics.connectionsClosed &+= 1
        open -= 1
    }

    /// At stop: ends every connection's requests (shutdown makes receives see EOF and sends fail),
    /// waits briefly for them to complete so no buffer is freed under the kernel, then closes all.
    private mutating func closeAllConnections() {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.isOpen {
            connections[fd].pointee.isClosing = true
            _ = shutdown(fd, Int32(SHUT_RDWR))
            statistics.syscalls.other &+= 1
            closeIfFinished(fd)
        }
        var timeout = __kernel_timespec(tv_sec: 0, tv_nsec: 20_000_000)
        var rounds = 0
        while open > 0 && rounds < 25 {  // at most about half a second
            var cqe: UnsafeMutablePointer<io_uring_cqe>?
            _ = io_uring_submit_and_wait_timeout(ring.raw, &cqe, 1, &timeout, nil)
            statistics.syscalls.ioUringEnter &+= 1
            drainCompletions()
            rounds += 1
        }
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.isOpen {
            close(fd)
        }
    }

    // MARK: Submissions

    @inline(__always)
    private mutating func armReceive(_ fd: Int32) {
        connections[fd].pointee.isReceiving = true
        let sqe = ring.submission(enters: &statistics.syscalls.ioUringEnter)
        io_uring_prep_recv_multishot(sqe, fd, nil, 0, 0)
        sqe.pointee.ioprio |= KernelConstant.recvSendBundle
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = UInt16(fd)
        sqe.pointee.user_data = UserData(.recv, fd: fd).rawValue
    }

    /// Sends what is queued: one buffer with `send`, several gathered into one `sendmsg`.
    @inline(__always)
    private mutating func armSend(_ fd: Int32) {
        let connection = connections[fd]
        let count = Int(connection.pointee.queued)
        guard count > 0, let buffers = connection.pointee.buffers else { return }
        connection.pointee.isSending = true
        var position = connection.pointee.sent
        var offset = connection.pointee.sendOffset
        let sqe = ring.submission(enters: &statistics.syscalls.ioUringEnter)
        if count == 1 {
            let id = UInt16(Int32(position) & ConnectionBufferRing.mask)
            io_uring_prep_send(sqe, fd, buffers.buffer(id) + Int(offset),
                               Int(buffers.filled[Int(id)] &- offset), Int32(MSG_NOSIGNAL))
        } else {
            for index in 0..<count {
                let id = UInt16(Int32(position) & ConnectionBufferRing.mask)
                buffers.vectors[index] = iovec(iov_base: buffers.buffer(id) + Int(offset),
                                               iov_len: Int(buffers.filled[Int(id)] &- offset))
                offset = 0
                position &+= 1
            }
            buffers.message.pointee = msghdr()
            buffers.message.pointee.msg_iov = buffers.vectors
            buffers.message.pointee.msg_iovlen = count
            io_uring_prep_sendmsg(sqe, fd, buffers.message, UInt32(MSG_NOSIGNAL))
        }
        sqe.pointee.user_data = UserData(.send, fd: fd).rawValue
    }

    private mutating func armAccept() {
        ring.armMultishotAccept(listener: listenerFD, direct: false, enters: &statistics.syscalls.ioUringEnter)
    }
}
