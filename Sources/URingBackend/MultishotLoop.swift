#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// The io_uring loop built on the kernel features of Linux 5.19–6.1: one multishot accept, one
/// multishot receive per connection drawing from a provided-buffer ring, sends straight from the
/// received buffer, and the buffer back in the ring (no submission) once its bytes are sent.
///
/// Optional, per ``URingBackend/Options``: `DEFER_TASKRUN` (with `SINGLE_ISSUER`), SQPOLL, direct
/// descriptors from the accept (`--fixed-files`), and zero-copy sends above a size.
/// A noncopyable value that lives on the loop thread only: no reference counting, and exclusive
/// access is checked by the compiler rather than at run time on every request.
struct MultishotLoop: ~Copyable {
    private let ring: Ring
    private let pool: BufferPool
    private var bufferRing: ProvidedBufferRing
    /// Bytes held by each buffer, and the next buffer in its connection's send queue (or -1).
    private let bufferLength: UnsafeMutablePointer<Int32>
    private let bufferNext: UnsafeMutablePointer<Int32>
    /// Zero-copy notifications still to come for each buffer, and whether it goes back to the
    /// ring when they have all come (its bytes are all sent).
    private let pendingNotifications: UnsafeMutablePointer<Int16>
    private let releaseOnNotification: UnsafeMutablePointer<Bool>
    private var connections = ConnectionTable<MultishotConnection>()
    private let completions = CompletionBatch()

    private let listenerFD: Int32
    private let stopFD: Int32
    private let published: LiveStatistics
    private var statistics = ServerStatistics()

    private let fixedFiles: Bool
    private let zeroCopyThreshold: Int32
    /// Queued buffers at which a connection's receive is cancelled until its queue drains.
    private let pauseThreshold: Int32 = 8

    /// Buffers in the ring as far as completions tell (returns minus receives).
    private var buffersInRing = 0
    private var starvedHead: Int32 = -1
    private var starvedTail: Int32 = -1
    private var stopping = false

    private static let bufferGroup: UInt16 = 1

    init(options: URingBackend.Options, listener: ListeningSocket, stop: StopSignal,
         statistics: LiveStatistics) throws(EchoError) {
        // Everything that can fail comes first: a noncopyable value is initialized all at once.
        let ring = try Ring(entries: options.ringEntries, parameters: options.setupParameters)
        var entries = 1
        while entries < options.bufferCount { entries <<= 1 }
        let bufferRing = try ProvidedBufferRing(registeringOn: ring, entries: entries, group: Self.bufferGroup)
        if options.fixedFiles {
            let slots = UInt32(min(max(FileDescriptorLimit.current, 64), 1 << 20))
            let status = io_uring_register_files_sparse(ring.raw, slots)
            guard status == 0 else {
                if status == -EINVAL {
                    throw .missingKernelFeature("sparse registered files (IORING_RSRC_REGISTER_SPARSE, Linux 5.19)")
                }
                throw .system("io_uring_register_files_sparse", errno: -status)
            }
        }
        self.ring = ring
        self.bufferRing = bufferRing
        pool = BufferPool(bufferSize: options.bufferSize, count: options.bufferCount)
        let count = options.bufferCount
        bufferLength = .allocate(capacity: count)
        bufferLength.initialize(repeating: 0, count: count)
        bufferNext = .allocate(capacity: count)
        bufferNext.initialize(repeating: -1, count: count)
        pendingNotifications = .allocate(capacity: count)
        pendingNotifications.initialize(repeating: 0, count: count)
        releaseOnNotification = .allocate(capacity: count)
        releaseOnNotification.initialize(repeating: false, count: count)
        listenerFD = listener.fileDescriptor
        stopFD = stop.fileDescriptor
        published = statistics
        fixedFiles = options.fixedFiles
        zeroCopyThreshold = Int32(clamping: options.zeroCopyThreshold)
    }

    deinit {
        bufferLength.deallocate()
        bufferNext.deallocate()
        pendingNotifications.deallocate()
        releaseOnNotification.deallocate()
    }

    /// Runs until the stop signal fires, then closes every connection.
    mutating func run() throws(EchoError) {
        for id in 0..<pool.count { recycle(UInt16(id)) }
        bufferRing.publish()
        ring.watchStopSignal(stopFD, enters: &statistics.syscalls.ioUringEnter)
        armAccept()
        while !stopping {
            try ring.submitAndWait(enters: &statistics.syscalls.ioUringEnter)
            drainCompletions()
            bufferRing.publish()
            if starvedHead >= 0 && buffersInRing > 0 { wakeStarved() }
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
        case .send:
            if flags & UInt32(IORING_CQE_F_NOTIF) != 0 {
                notified(buffer: data.buffer)
            } else {
                sent(on: data.fd, buffer: data.buffer, result: result, flags: flags)
            }
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
        if flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
            buffersInRing &-= 1
            let id = UInt16(truncatingIfNeeded: flags >> UInt32(IORING_CQE_BUFFER_SHIFT))
            if result > 0 && !connection.pointee.isClosing {
                statistics.requests &+= 1
                statistics.bytesReceived &+= UInt64(result)
                enqueue(id, length: result, on: fd)
                if !connection.pointee.isSending { sendHead(of: fd) }
                if more && connection.pointee.queued >= pauseThreshold && !connection.pointee.isPaused {
                    // The peer reads slower than it writes: stop taking its bytes for now.
                    connection.pointee.isPaused = true
                    cancelReceive(on: fd)
                }
            } else {
                recycle(id)
            }
        }
        if more { return }
        // The multishot receive has ended; find out why.
        if result == 0 {
            connection.pointee.peerClosed = true
        } else if result < 0 {
            switch -result {
            case ENOBUFS:
                if !connection.pointee.isClosing && !connection.pointee.isPaused { starve(fd) }
            case ECANCELED, EINTR, EAGAIN:
                break  // cancelled for back-pressure or closing; resumed or closed below
            default:
                beginClosing(fd)
            }
        } else if !connection.pointee.isClosing && !connection.pointee.isPaused {
            armReceive(fd)  // ended with data (CQ pressure): keep receiving
        }
        if connection.pointee.isPaused && !connection.pointee.isSending && !connection.pointee.isReceiving
            && !connection.pointee.isClosing && !connection.pointee.peerClosed {
            // The queue drained before the cancel landed: receive again now.
            connection.pointee.isPaused = false
            if !connection.pointee.isStarved { armReceive(fd) }
        }
        closeIfFinished(fd)
    }

    @inline(__always)
    private mutating func sent(on fd: Int32, buffer id: UInt16, result: Int32, flags: UInt32) {
        let connection = connections[fd]
        if flags & UInt32(IORING_CQE_F_MORE) != 0 {
            pendingNotifications[Int(id)] &+= 1  // a zero-copy send: the buffer is the kernel's until notified
        }
        if result > 0 && !connection.pointee.isClosing {
            statistics.bytesSent &+= UInt64(result)
            connection.pointee.sendOffset &+= result
            if connection.pointee.sendOffset < bufferLength[Int(id)] {
                armSend(fd, buffer: id)  // a short send: the rest next, never two at once
                return
            }
            dequeueHead(of: fd)
            if connection.pointee.queueHead >= 0 {
                sendHead(of: fd)
                return
            }
            connection.pointee.isSending = false
            if connection.pointee.isPaused && !connection.pointee.isReceiving && !connection.pointee.peerClosed {
                connection.pointee.isPaused = false
                armReceive(fd)
            }
            closeIfFinished(fd)
            return
        }
        if result == -EINTR || result == -EAGAIN {
            armSend(fd, buffer: id)
            return
        }
        // The peer is gone (EPIPE, ECONNRESET) or the connection is closing.
        connection.pointee.isSending = false
        beginClosing(fd)
        closeIfFinished(fd)
    }

    private mutating func notified(buffer id: UInt16) {
        pendingNotifications[Int(id)] &-= 1
        if pendingNotifications[Int(id)] == 0 && releaseOnNotification[Int(id)] {
            releaseOnNotification[Int(id)] = false
            recycle(id)
        }
    }

    private mutating func accepted(result: Int32, flags: UInt32) {
        guard let fd = ring.multishotAcceptCompleted(result: result, flags: flags, listener: listenerFD,
                                                     direct: fixedFiles, stopping: stopping,
                                                     statistics: &statistics) else { return }
        if stopping {
            closeDescriptor(fd)
            return
        }
        connections.reserve(fd)
        var connection = MultishotConnection()
        connection.isOpen = true
        connections[fd].pointee = connection
        statistics.connectionsAccepted &+= 1
        armReceive(fd)
    }

    // MARK: Send queues

    @inline(__always)
    private mutating func enqueue(_ id: UInt16, length: Int32, on fd: Int32) {
        let connection = connections[fd]
        bufferLength[Int(id)] = length
        bufferNext[Int(id)] = -1
        if connection.pointee.queueTail >= 0 {
            bufferNext[Int(connection.pointee.queueTail)] = Int32(id)
        } else {
            connection.pointee.queueHead = Int32(id)
        }
        connection.pointee.queueTail = Int32(id)
        connection.pointee.queued &+= 1
    }

    @inline(__always)
    private mutating func dequeueHead(of fd: Int32) {
        let connection = connections[fd]
        let id = UInt16(truncatingIfNeeded: connection.pointee.queueHead)
        connection.pointee.queueHead = bufferNext[Int(id)]
        if connection.pointee.queueHead < 0 { connection.pointee.queueTail = -1 }
        connection.pointee.queued &-= 1
        connection.pointee.sendOffset = 0
        release(id)
    }

    @inline(__always)
    private mutating func sendHead(of fd: Int32) {
        let connection = connections[fd]
        connection.pointee.isSending = true
        connection.pointee.sendOffset = 0
        armSend(fd, buffer: UInt16(truncatingIfNeeded: connection.pointee.queueHead))
    }

    /// A buffer whose bytes are all sent: back to the ring, or after its zero-copy notifications.
    @inline(__always)
    private mutating func release(_ id: UInt16) {
        if pendingNotifications[Int(id)] > 0 {
            releaseOnNotification[Int(id)] = true
        } else {
            recycle(id)
        }
    }

    @inline(__always)
    private mutating func recycle(_ id: UInt16) {
        bufferRing.add(id, address: pool.address(of: id), length: pool.bufferSize)
        buffersInRing &+= 1
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

    /// Re-arms every starved connection once the ring has buffers again (see the legacy loop's
    /// `wakeStarved` for why all of them: the ones with nothing to read just park).
    private mutating func wakeStarved() {
        var fd = starvedHead
        starvedHead = -1
        starvedTail = -1
        while fd >= 0 {
            let connection = connections[fd]
            let next = connection.pointee.nextStarved
            connection.pointee.nextStarved = -1
            connection.pointee.isStarved = false
            if connection.pointee.isClosing || connection.pointee.peerClosed {
                closeIfFinished(fd)
            } else if connection.pointee.isOpen && !connection.pointee.isReceiving && !connection.pointee.isPaused {
                armReceive(fd)
            }
            fd = next
        }
    }

    /// Marks the connection broken: queued bytes are dropped and its receive cancelled; it is
    /// closed by ``closeIfFinished(_:)`` once nothing of it is in flight.
    private mutating func beginClosing(_ fd: Int32) {
        let connection = connections[fd]
        guard !connection.pointee.isClosing else { return }
        connection.pointee.isClosing = true
        // Drop what waits to be sent, except a buffer a send in flight still reads.
        var id = connection.pointee.queueHead
        if connection.pointee.isSending, id >= 0 { id = bufferNext[Int(id)] }
        while id >= 0 {
            let next = bufferNext[Int(id)]
            release(UInt16(truncatingIfNeeded: id))
            id = next
        }
        if connection.pointee.isSending, connection.pointee.queueHead >= 0 {
            connection.pointee.queueTail = connection.pointee.queueHead
            bufferNext[Int(connection.pointee.queueHead)] = -1
            connection.pointee.queued = 1
        } else {
            connection.pointee.queueHead = -1
            connection.pointee.queueTail = -1
            connection.pointee.queued = 0
        }
        if connection.pointee.isReceiving { cancelReceive(on: fd) }
    }

    /// Closes the connection if it is done: broken, or the peer closed and every byte is sent,
    /// and no request of it is in flight (so its descriptor cannot be reused under one).
    private mutating func closeIfFinished(_ fd: Int32) {
        let connection = connections[fd]
        guard connection.pointee.isOpen, !connection.pointee.isSending else { return }
        if connection.pointee.isClosing {
            // A send that failed or completed while closing left its buffer at the head.
            if connection.pointee.queueHead >= 0 {
                release(UInt16(truncatingIfNeeded: connection.pointee.queueHead))
                connection.pointee.queueHead = -1
                connection.pointee.queueTail = -1
                connection.pointee.queued = 0
            }
        } else if !(connection.pointee.peerClosed && connection.pointee.queueHead < 0) {
            return
        }
        guard !connection.pointee.isReceiving else { return }
        if connection.pointee.isStarved { return }  // leaves the starved queue first (see wakeStarved)
        connection.pointee.isOpen = false
        closeDescriptor(fd)
        statistics.connectionsClosed &+= 1
    }

    private mutating func closeDescriptor(_ fd: Int32) {
        if fixedFiles {
            let sqe = ring.submission(enters: &statistics.syscalls.ioUringEnter)
            io_uring_prep_close_direct(sqe, UInt32(fd))
            sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
            sqe.pointee.user_data = UserData(.ignored, fd: fd).rawValue
        } else {
            _ = Glibc.close(fd)
            statistics.syscalls.close &+= 1
        }
    }

    private mutating func closeAllConnections() {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.isOpen {
            connections[fd].pointee.isOpen = false
            closeDescriptor(fd)
            statistics.connectionsClosed &+= 1
        }
        if fixedFiles { _ = io_uring_submit(ring.raw); statistics.syscalls.ioUringEnter &+= 1 }
    }

    // MARK: Submissions

    @inline(__always)
    private mutating func target(_ sqe: UnsafeMutablePointer<io_uring_sqe>) {
        if fixedFiles { sqe.pointee.flags |= UInt8(1 << IOSQE_FIXED_FILE_BIT) }
    }

    @inline(__always)
    private mutating func armReceive(_ fd: Int32) {
        connections[fd].pointee.isReceiving = true
        let sqe = ring.submission(enters: &statistics.syscalls.ioUringEnter)
        io_uring_prep_recv_multishot(sqe, fd, nil, 0, 0)
        target(sqe)
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = Self.bufferGroup
        sqe.pointee.user_data = UserData(.recv, fd: fd).rawValue
    }

    private mutating func cancelReceive(on fd: Int32) {
        let sqe = ring.submission(enters: &statistics.syscalls.ioUringEnter)
        io_uring_prep_cancel64(sqe, UserData(.recv, fd: fd).rawValue, 0)
        sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
        sqe.pointee.user_data = UserData(.ignored, fd: fd).rawValue
    }

    @inline(__always)
    private mutating func armSend(_ fd: Int32, buffer id: UInt16) {
        let offset = connections[fd].pointee.sendOffset
        let length = bufferLength[Int(id)] &- offset
        let start = pool.address(of: id) + Int(offset)
        let sqe = ring.submission(enters: &statistics.syscalls.ioUringEnter)
        if zeroCopyThreshold > 0 && length >= zeroCopyThreshold {
            io_uring_prep_send_zc(sqe, fd, start, Int(length), Int32(MSG_NOSIGNAL), 0)
        } else {
            io_uring_prep_send(sqe, fd, start, Int(length), Int32(MSG_NOSIGNAL))
        }
        target(sqe)
        sqe.pointee.user_data = UserData(.send, fd: fd, buffer: id).rawValue
    }

    private mutating func armAccept() {
        ring.armMultishotAccept(listener: listenerFD, direct: fixedFiles, enters: &statistics.syscalls.ioUringEnter)
    }
}
