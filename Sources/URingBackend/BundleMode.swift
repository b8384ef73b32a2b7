#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// Receive bundles (`--uring-mode bundle`, Linux 6.10): one multishot accept, and per connection
/// one multishot receive with `IORING_RECVSEND_BUNDLE` on a provided-buffer ring of the
/// connection's own (see ``ConnectionBufferRing`` for why not the shared one), so one completion
/// may bring several buffers' worth of a stream; a send gathers every filled buffer into one
/// `sendmsg`, and each buffer goes back into the ring once sent.
///
/// The price is memory: each connection holds ``ConnectionBufferRing/count`` buffers of its own
/// while it is open, idle or not, and registering and unregistering its ring costs two system
/// calls per connection. Back-pressure is per connection for free: a peer that does not read
/// leaves its buffers queued, its receive ends with `ENOBUFS`, and nobody else is affected.
struct BundleMode: LoopMode, ~Copyable {
    private var connections = ConnectionTable<BundleConnection>()
    private let bufferSize: Int
    /// Connections open (their rings registered).
    private var open = 0

    init(options: URingBackend.Options, ring: borrowing Ring) throws(EchoError) {
        bufferSize = options.bufferSize
    }

    // MARK: Completions

    @inline(__always)
    mutating func received(on fd: Int32, result: Int32, flags: UInt32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        if flags & UInt32(IORING_CQE_F_BUFFER) != 0 && result > 0 && connection.pointee.lifecycle != .free {
            connection.pointee.bundleReceived(result)
            if connection.pointee.lifecycle != .closing {
                loop.idle.touch(fd)
                loop.statistics[.requests] &+= 1
                loop.statistics[.bytesReceived] &+= UInt64(result)
                if connection.pointee.send == .idle { armSend(fd, &loop) }
            }
        }
        if flags & UInt32(IORING_CQE_F_MORE) != 0 { return }
        switch connection.pointee.receiveEnded(result: result) {
        case .nothing, .starve: break
        case .rearm: armReceive(fd, &loop)
        case .close: beginClosing(fd, &loop)
        }
        closeIfFinished(fd, &loop)
    }

    @inline(__always)
    mutating func sent(on fd: Int32, buffer: UInt16, result: Int32, flags: UInt32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        connection.pointee.send = .idle
        guard connection.pointee.lifecycle != .free else { return }
        if result > 0 && connection.pointee.lifecycle != .closing {
            loop.idle.touch(fd)
            loop.statistics[.bytesSent] &+= UInt64(result)
            let returned = connection.pointee.bundleSent(result)
            armSend(fd, &loop)
            if returned && connection.pointee.buffersReturned() { armReceive(fd, &loop) }
            closeIfFinished(fd, &loop)
            return
        }
        if result == -EINTR || result == -EAGAIN {
            armSend(fd, &loop)
            return
        }
        beginClosing(fd, &loop)  // the peer is gone (EPIPE, ECONNRESET), or the connection is closing
        closeIfFinished(fd, &loop)
    }

    mutating func adopt(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        // The ring's buffer group is the descriptor: 16 bits.
        guard fd < Int32(UInt16.max) else {
            loop.statistics[.acceptFailures] &+= 1
            loop.close(Descriptor(fd, .ordinary))
            return false
        }
        let buffers = ConnectionBufferRing(bufferSize: bufferSize)
        let status = buffers.register(on: loop.ring, group: UInt16(fd))
        loop.statistics[.other] &+= 1
        guard status == 0 else {
            loop.statistics[.acceptFailures] &+= 1
            loop.close(Descriptor(fd, .ordinary))
            return false  // the buffers go with `buffers`
        }
        connections.reserve(fd)
        connections[fd].pointee = BundleConnection(accepted: buffers)
        open += 1
        armReceive(fd, &loop)
        return true
    }

    // MARK: Connections

    private mutating func beginClosing(_ fd: Int32, _ loop: inout LoopContext) {
        if connections[fd].pointee.beginClosing() {
            loop.ring.cancelReceive(on: fd, enters: &loop.statistics[.ioUringEnter])
        }
    }

    /// A closing connection's cancel failed while its receive still runs (a completion that ended
    /// it would have come first): shut down, the receive ends with the end of stream.
    mutating func receiveCancelFailed(on fd: Int32, result: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        if connection.pointee.lifecycle == .closing && connection.pointee.receive == .armed {
            loop.shutDown(Descriptor(fd, .ordinary))
        }
    }

    /// Closes the connection once it is done and nothing of it is in flight (see
    /// ``BundleConnection/isFinished``).
    private mutating func closeIfFinished(_ fd: Int32, _ loop: inout LoopContext) {
        guard connections[fd].pointee.isFinished else { return }
        close(fd, &loop)
    }

    /// Unregisters the connection's ring, frees its buffers and closes its descriptor.
    ///
    /// When unregistering fails the kernel may still hold the ring, and write into its buffers:
    /// their memory is leaked and counted (``ServerStatistics/Counter/bufferBytesLeaked``), never freed.
    mutating func close(_ fd: Int32, _ loop: inout LoopContext) {
        let status = io_uring_unregister_buf_ring(loop.ring.raw, Int32(fd))
        loop.statistics[.other] &+= 1
        if status < 0 {
            loop.statistics[.bufferBytesLeaked] &+= UInt64(connections[fd].pointee.leakBuffers())
        }
        connections[fd].pointee = BundleConnection()  // the old record's ring frees its memory, if it has it
        loop.close(Descriptor(fd, .ordinary))
        loop.statistics[.connectionsClosed] &+= 1
        open -= 1
    }

    /// Ends a connection silent past the idle timeout: shut down, so its requests complete, then
    /// closed like a broken one.
    mutating func closeIdle(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        guard connections.isLive(fd) else { return false }
        loop.shutDown(Descriptor(fd, .ordinary))
        beginClosing(fd, &loop)
        closeIfFinished(fd, &loop)
        return true
    }

    // MARK: Teardown

    /// Ends every connection's requests (shutdown makes receives see EOF and sends fail) so they
    /// complete before the buffers they use are freed; the driver waits for them, briefly.
    mutating func shutDownConnections(_ loop: inout LoopContext) -> Bool {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.lifecycle != .free {
            _ = connections[fd].pointee.lifecycle.beginClosing()
            _ = shutdown(fd, Int32(SHUT_RDWR))
            loop.statistics[.other] &+= 1
            closeIfFinished(fd, &loop)
        }
        return open > 0
    }

    var hasConnectionsInFlight: Bool { open > 0 }

    /// Closes whatever the wait left open (its requests are cancelled when the ring is torn down).
    mutating func closeAll(_ loop: inout LoopContext) {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.lifecycle != .free {
            close(fd, &loop)
        }
    }

    // MARK: Submissions

    @inline(__always)
    private func armReceive(_ fd: Int32, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_recv_multishot(sqe, fd, nil, 0, 0)
        sqe.pointee.ioprio |= KernelConstant.recvSendBundle
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = UInt16(fd)
        sqe.pointee.user_data = UserData(.recv, fd: fd).rawValue
    }

    /// Sends what is queued, if anything: one buffer with `send`, several gathered into one `sendmsg`.
    @inline(__always)
    private func armSend(_ fd: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        guard connection.pointee.queued > 0, connection.pointee.lifecycle != .free else { return }
        let sqe = loop.submission()
        connection.pointee.prepareSend(sqe, fd: fd)
        sqe.pointee.user_data = UserData(.send, fd: fd).rawValue
    }
}
