#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// The default mode wherever the kernel has multishot receive (Linux 6.0): one multishot accept, one
/// multishot receive per connection drawing from a provided-buffer ring, sends straight from the
/// received bytes, and each buffer back in the ring (no submission) once its bytes are sent.
///
/// Optional, per ``URingBackend/Options``: incremental buffer consumption (`IOU_PBUF_RING_INC`,
/// Linux 6.12), where receives take only the bytes that are ready from a large shared buffer, so
/// small messages use a slice of it and streams get large receives and sends; direct descriptors
/// from the accept (`--fixed-files`); zero-copy sends above a size. The send queues are in
/// `MultishotMode+SendQueue.swift`, closing in `MultishotMode+Closing.swift`.
///
/// Buffer ownership: a buffer is referenced by the kernel while it is in the ring (with
/// incremental consumption, until a completion without `IORING_CQE_F_BUF_MORE` ends it), by every
/// queued slice of it, and by every zero-copy send of it until its notification. It goes back to
/// the ring when the last reference goes.
struct MultishotMode: LoopMode, ~Copyable {
    let pool: BufferPool
    var bufferRing: ProvidedBufferRing
    /// Per buffer: its references (see above), and the bytes receives have taken from it so far
    /// (incremental consumption only; the next receive's bytes start there).
    let references: UnsafeMutablePointer<Int32>
    let filled: UnsafeMutablePointer<Int32>
    var slices: SendSlices
    /// Connections whose sends go out at the end of this turn, and the records their gathered
    /// sends use.
    var schedule = SendSchedule()
    var gather = GatherScratch()
    var connections = ConnectionTable<MultishotConnection>()
    var starved = StarvedQueue()

    let incremental: Bool
    /// Whether several queued slices leave in one `sendmsg`: not with zero-copy sends (a
    /// notification returns one buffer) nor with `SQPOLL` (the kernel thread takes submissions
    /// after the turn ends, when ``GatherScratch`` records are already reused).
    let gathersSends: Bool
    /// Direct descriptors (`--fixed-files`) or ordinary ones: what every request names.
    let accepts: Descriptor.Kind
    let zeroCopyThreshold: Int32
    /// Buffers in the ring as far as completions tell (returns minus buffers the kernel let go).
    var buffersInRing = 0
    /// Free buffers out of the ring, most recently freed last, and the ring's size target (see
    /// `MultishotMode+Buffers.swift`): the whole pool with whole buffers.
    let spare: UnsafeMutablePointer<UInt16>
    var spareCount = 0
    var ringTarget: Int
    var quietTurns = 0

    /// Queued slices at which a connection's receive is cancelled until its queue drains.
    static var pauseThreshold: Int32 { 8 }
    static var bufferGroup: UInt16 { 1 }

    init(options: URingBackend.Options, ring: borrowing Ring) throws(EchoError) {
        // Everything that can fail comes first: a value with a deinit is initialized all at once.
        var entries = 1
        while entries < options.bufferCount { entries <<= 1 }
        let bufferRing = try ProvidedBufferRing(registeringOn: ring, entries: entries, group: Self.bufferGroup,
                                                incremental: options.incrementalBuffers)
        if options.fixedFiles {
            let slots = UInt32(min(max(FileDescriptorLimit.current, 64), 1 << 20))
            let status = io_uring_register_files_sparse(ring.raw, slots)
            guard status == 0 else {
                if status == -EINVAL {
                    throw .missingKernelFeature("sparse registered files (IORING_RSRC_REGISTER_SPARSE, Linux 5.19)")
                }
                throw SystemCall.failure("io_uring_register_files_sparse", result: status)
            }
        }
        self.bufferRing = bufferRing
        pool = BufferPool(bufferSize: options.bufferSize, count: options.bufferCount)
        let count = options.bufferCount
        references = .allocate(capacity: count)
        references.initialize(repeating: 0, count: count)
        filled = .allocate(capacity: count)
        filled.initialize(repeating: 0, count: count)
        spare = .allocate(capacity: count)
        ringTarget = options.incrementalBuffers ? min(Self.smallestRingTarget, count) : count
        // A slice per buffer is all whole buffers can use; incremental rings start with more.
        slices = SendSlices(capacity: options.incrementalBuffers ? max(count * 4, 1024) : count)
        incremental = options.incrementalBuffers
        gathersSends = options.zeroCopyThreshold == 0 && !options.sqpoll
        accepts = options.fixedFiles ? .direct : .ordinary
        zeroCopyThreshold = Int32(clamping: options.zeroCopyThreshold)
    }

    deinit {
        references.deallocate()
        filled.deallocate()
        spare.deallocate()
    }

    /// Frees every buffer: the ring takes its target, the spare stack the rest.
    mutating func start(_ loop: inout LoopContext) {
        for id in 0..<pool.count { recycle(UInt16(id)) }
        bufferRing.publish()
    }

    /// The connection on `fd` (a connection-table index) as the ring names it.
    @inline(__always)
    func descriptor(_ fd: Int32) -> Descriptor { Descriptor(fd, accepts) }

    mutating func adopt(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        connections.reserve(fd)
        connections[fd].pointee = .accepted
        armReceive(fd, &loop)
        return true
    }

    /// Submits the sends scheduled this turn, each gathering every slice its connection has
    /// queued; publishes the buffers returned this turn, then wakes the starved connections if any
    /// came back (see ``StarvedQueue``).
    @inline(__always)
    mutating func endTurn(_ loop: inout LoopContext) {
        gather.reclaim(takenThrough: loop.ring.takenHead)
        for index in 0..<schedule.count {
            let fd = schedule[index]
            if connections[fd].pointee.lifecycle == .closing {
                // Broken while its send waited: nothing goes out, and it may close now.
                connections[fd].pointee.send = .idle
                closeIfFinished(fd, &loop)
            } else {
                armSend(fd, &loop)
            }
        }
        schedule.removeAll()
        gather.markQueued(through: loop.ring.queuedTail)
        refillRing(starvedThisTurn: !starved.isEmpty)
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
            let id = UInt16(truncatingIfNeeded: flags >> UInt32(IORING_CQE_BUFFER_SHIFT))
            // The bytes start where earlier receives into this buffer stopped (0 for whole buffers).
            let start = filled[Int(id)]
            // An incremental ring keeps a buffer with room left (BUF_MORE); a receive that took
            // nothing leaves it at the ring's head too.
            let kept = incremental && (result <= 0 || flags & KernelConstant.completionBufferMore != 0)
            if result > 0 && connection.pointee.lifecycle != .closing {
                loop.idle.touch(fd)
                loop.statistics[.requests] &+= 1
                loop.statistics[.bytesReceived] &+= UInt64(result)
                enqueue(id, offset: start, length: result, on: fd)
                if connection.pointee.send == .idle { scheduleSend(fd) }
                if more && connection.pointee.shouldPause(threshold: Self.pauseThreshold) {
                    // The peer reads slower than it writes: stop taking its bytes for now.
                    cancelReceive(on: fd, &loop)
                }
            }
            if kept {
                if result > 0 { filled[Int(id)] = start &+ result }
            } else {
                buffersInRing &-= 1
                unreference(id)  // the kernel's
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
            unreference(id)  // the zero-copy send's, taken below
            return
        }
        let connection = connections[fd]
        if flags & UInt32(IORING_CQE_F_MORE) != 0 {
            references[Int(id)] &+= 1  // a zero-copy send: the buffer is the kernel's until notified
        }
        if result > 0 && connection.pointee.lifecycle != .closing {
            loop.idle.touch(fd)
            loop.statistics[.bytesSent] &+= UInt64(result)
            advanceQueue(of: fd, by: result)
            if connection.pointee.queueHead >= 0 {
                // More to send: a short send's rest, or slices that came meanwhile. Never two at once.
                schedule.append(fd)
                return
            }
            if connection.pointee.sendQueueDrained() { armReceive(fd, &loop) }
            closeIfFinished(fd, &loop)
            return
        }
        if result == -EINTR || result == -EAGAIN {
            schedule.append(fd)
            return
        }
        // The peer is gone (EPIPE, ECONNRESET) or the connection is closing.
        connection.pointee.send = .idle
        beginClosing(fd, &loop)
        closeIfFinished(fd, &loop)
    }

    // MARK: Submissions

    /// Submits the connection's multishot receive (its state already says it is armed).
    @inline(__always)
    func armReceive(_ fd: Int32, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_recv_multishot(sqe, fd, nil, 0, 0)
        descriptor(fd).target(sqe)
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = Self.bufferGroup
        sqe.pointee.user_data = UserData(.recv, fd: fd).rawValue
    }

    /// Sends the connection's queue from its first unsent byte: with one `sendmsg` over up to
    /// ``GatherScratch/slicesPerSend`` slices when more than one is queued (see
    /// ``gathersSends``), else with one `send` or `send_zc`.
    @inline(__always)
    mutating func armSend(_ fd: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        let first = slices[connection.pointee.queueHead]
        let offset = first.offset &+ connection.pointee.sendOffset
        let length = first.length &- connection.pointee.sendOffset
        let start = pool.address(of: first.buffer) + Int(offset)
        let sqe = loop.submission()
        sqe.pointee.user_data = UserData(.send, fd: fd, buffer: first.buffer).rawValue
        if zeroCopyThreshold > 0 {
            if length >= zeroCopyThreshold {
                io_uring_prep_send_zc(sqe, fd, start, Int(length), Int32(MSG_NOSIGNAL), 0)
            } else {
                io_uring_prep_send(sqe, fd, start, Int(length), Int32(MSG_NOSIGNAL))
            }
        } else if gathersSends && first.next >= 0, let header = gather.take() {
            let vectors = header.pointee.msg_iov!
            vectors[0] = iovec(iov_base: start, iov_len: Int(length))
            var count = 1
            var index = first.next
            while index >= 0 && count < GatherScratch.slicesPerSend {
                let slice = slices[index]
                vectors[count] = iovec(iov_base: pool.address(of: slice.buffer) + Int(slice.offset), iov_len: Int(slice.length))
                count &+= 1
                index = slice.next
            }
            header.pointee.msg_iovlen = count
            io_uring_prep_sendmsg(sqe, fd, header, UInt32(MSG_NOSIGNAL))
        } else {
            io_uring_prep_send(sqe, fd, start, Int(length), Int32(MSG_NOSIGNAL))
        }
        descriptor(fd).target(sqe)
    }
}
