#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// The default mode, on the kernel features of Linux 5.19–6.1: one multishot accept, one
/// multishot receive per connection drawing from a provided-buffer ring, sends straight from the
/// received buffer, and the buffer back in the ring (no submission) once its bytes are sent.
///
/// Optional, per ``URingBackend/Options``: direct descriptors from the accept (`--fixed-files`)
/// and zero-copy sends above a size. The send queues are in `MultishotMode+SendQueue.swift`,
/// closing in `MultishotMode+Closing.swift`.
struct MultishotMode: LoopMode, ~Copyable {
    let pool: BufferPool
    var bufferRing: ProvidedBufferRing
    /// Bytes held by each buffer, and the next buffer in its connection's send queue (or -1).
    let bufferLength: UnsafeMutablePointer<Int32>
    let bufferNext: UnsafeMutablePointer<Int32>
    /// Zero-copy notifications still to come for each buffer, and whether it goes back to the
    /// ring when they have all come (its bytes are all sent).
    let pendingNotifications: UnsafeMutablePointer<Int16>
    let releaseOnNotification: UnsafeMutablePointer<Bool>
    var connections = ConnectionTable<MultishotConnection>()
    var starved = StarvedQueue()

    let fixedFiles: Bool
    let zeroCopyThreshold: Int32
    /// Buffers in the ring as far as completions tell (returns minus receives).
    var buffersInRing = 0

    /// Queued buffers at which a connection's receive is cancelled until its queue drains.
    static var pauseThreshold: Int32 { 8 }
    static var bufferGroup: UInt16 { 1 }

    init(options: URingBackend.Options, ring: borrowing Ring) throws(EchoError) {
        // Everything that can fail comes first: a value with a deinit is initialized all at once.
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
        fixedFiles = options.fixedFiles
        zeroCopyThreshold = Int32(clamping: options.zeroCopyThreshold)
    }

    deinit {
        bufferLength.deallocate()
        bufferNext.deallocate()
        pendingNotifications.deallocate()
        releaseOnNotification.deallocate()
    }

    /// Puts every buffer in the ring.
    mutating func start(_ loop: inout LoopContext) {
        for id in 0..<pool.count { recycle(UInt16(id)) }
        bufferRing.publish()
    }

    mutating func armAccept(_ loop: inout LoopContext) {
        loop.ring.armMultishotAccept(listener: loop.listener, direct: fixedFiles,
                                     enters: &loop.statistics.syscalls.ioUringEnter)
    }

    /// Publishes the buffers returned this turn, then wakes the starved connections if any came
    /// back (see ``StarvedQueue``).
    @inline(__always)
    mutating func endTurn(_ loop: inout LoopContext) {
        bufferRing.publish()
        guard !starved.isEmpty && buffersInRing > 0 else { return }
        var members = starved.removeAll()
        while let fd = members.next(in: connections) {
            if connections[fd].pointee.leaveStarvedQueue() {
                armReceive(fd, &loop)
            } else {
                closeIfFinished(fd, &loop)
            }
        }
    }

    // MARK: Completions

    @inline(__always)
    mutating func received(on fd: Int32, result: Int32, flags: UInt32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        let more = flags & UInt32(IORING_CQE_F_MORE) != 0
        if flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
            buffersInRing &-= 1
            let id = UInt16(truncatingIfNeeded: flags >> UInt32(IORING_CQE_BUFFER_SHIFT))
            if result > 0 && connection.pointee.lifecycle != .closing {
                loop.statistics.requests &+= 1
                loop.statistics.bytesReceived &+= UInt64(result)
                enqueue(id, length: result, on: fd)
                if connection.pointee.send == .idle { sendHead(of: fd, &loop) }
                if more && connection.pointee.shouldPause(threshold: Self.pauseThreshold) {
                    // The peer reads slower than it writes: stop taking its bytes for now.
                    cancelReceive(on: fd, &loop)
                }
            } else {
                recycle(id)
            }
        }
        if more { return }
        // The multishot receive has ended; the connection's state says what next.
        switch connection.pointee.receiveEnded(result: result) {
        case .nothing: break
        case .rearm: armReceive(fd, &loop)
        case .starve: starved.append(fd, in: connections)
        case .close: beginClosing(fd, &loop)
        }
        closeIfFinished(fd, &loop)
    }

    @inline(__always)
    mutating func sent(on fd: Int32, buffer id: UInt16, result: Int32, flags: UInt32, _ loop: inout LoopContext) {
        if flags & UInt32(IORING_CQE_F_NOTIF) != 0 {
            notified(buffer: id)
            return
        }
        let connection = connections[fd]
        if flags & UInt32(IORING_CQE_F_MORE) != 0 {
            pendingNotifications[Int(id)] &+= 1  // a zero-copy send: the buffer is the kernel's until notified
        }
        if result > 0 && connection.pointee.lifecycle != .closing {
            loop.statistics.bytesSent &+= UInt64(result)
            connection.pointee.sendOffset &+= result
            if connection.pointee.sendOffset < bufferLength[Int(id)] {
                armSend(fd, buffer: id, &loop)  // a short send: the rest next, never two at once
                return
            }
            dequeueHead(of: fd)
            if connection.pointee.queueHead >= 0 {
                sendHead(of: fd, &loop)
                return
            }
            if connection.pointee.sendQueueDrained() { armReceive(fd, &loop) }
            closeIfFinished(fd, &loop)
            return
        }
        if result == -EINTR || result == -EAGAIN {
            armSend(fd, buffer: id, &loop)
            return
        }
        // The peer is gone (EPIPE, ECONNRESET) or the connection is closing.
        connection.pointee.send = .idle
        beginClosing(fd, &loop)
        closeIfFinished(fd, &loop)
    }

    private mutating func notified(buffer id: UInt16) {
        pendingNotifications[Int(id)] &-= 1
        if pendingNotifications[Int(id)] == 0 && releaseOnNotification[Int(id)] {
            releaseOnNotification[Int(id)] = false
            recycle(id)
        }
    }

    mutating func accepted(result: Int32, flags: UInt32, _ loop: inout LoopContext) {
        guard let fd = loop.ring.multishotAcceptCompleted(result: result, flags: flags, listener: loop.listener,
                                                          direct: fixedFiles, stopping: loop.stopping,
                                                          statistics: &loop.statistics) else { return }
        if loop.stopping {
            closeDescriptor(fd, &loop)
            return
        }
        connections.reserve(fd)
        connections[fd].pointee = .accepted
        loop.statistics.connectionsAccepted &+= 1
        armReceive(fd, &loop)
    }

    // MARK: Submissions

    @inline(__always)
    private func target(_ sqe: UnsafeMutablePointer<io_uring_sqe>) {
        if fixedFiles { sqe.pointee.flags |= UInt8(1 << IOSQE_FIXED_FILE_BIT) }
    }

    /// Submits the connection's multishot receive (its state already says it is armed).
    @inline(__always)
    func armReceive(_ fd: Int32, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_recv_multishot(sqe, fd, nil, 0, 0)
        target(sqe)
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = Self.bufferGroup
        sqe.pointee.user_data = UserData(.recv, fd: fd).rawValue
    }

    @inline(__always)
    func armSend(_ fd: Int32, buffer id: UInt16, _ loop: inout LoopContext) {
        let offset = connections[fd].pointee.sendOffset
        let length = bufferLength[Int(id)] &- offset
        let start = pool.address(of: id) + Int(offset)
        let sqe = loop.submission()
        if zeroCopyThreshold > 0 && length >= zeroCopyThreshold {
            io_uring_prep_send_zc(sqe, fd, start, Int(length), Int32(MSG_NOSIGNAL), 0)
        } else {
            io_uring_prep_send(sqe, fd, start, Int(length), Int32(MSG_NOSIGNAL))
        }
        target(sqe)
        sqe.pointee.user_data = UserData(.send, fd: fd, buffer: id).rawValue
    }
}
