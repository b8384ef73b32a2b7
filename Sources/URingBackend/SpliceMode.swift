#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring
import CLinux
import EchoSupport

/// `--splice` on io_uring: bytes go socket → pipe → socket and are never copied into user space,
/// in one of two ways (``URingBackend/SpliceStrategy``) kept side by side to be measured:
///
/// - **poll**: one multishot `IORING_OP_POLL_ADD` per connection tells the loop a socket is
///   readable, and the loop splices with `splice(2)`, as the epoll loop does. A multishot poll
///   reports new arrivals, not what is left, so the loop splices until `EAGAIN`.
/// - **linked**: a single-shot poll per connection, then a hard-linked pair of `IORING_OP_SPLICE`
///   requests (socket → pipe, pipe → socket), which the kernel runs in io-wq worker threads. A
///   hard link, because a splice that moves fewer bytes than asked (the usual case) breaks an
///   ordinary link. The poll is armed again after each pair and fires at once if bytes wait.
///
/// Either way the pipes follow epoll's rules (``PipePool``): a connection takes one only when it
/// is readable and gives it back empty, so an idle connection holds none; the pool is bounded per
/// loop; a connection that finds no pipe is served by copying (`read`, `send`); bytes its peer
/// does not take stay in the pipe (or the copy's pending buffer) and the connection waits for a
/// `POLLOUT` poll and reads nothing until they are out. Sockets are accepted non-blocking, and
/// every splice asks `SPLICE_F_NONBLOCK`, so no call in the loop and no io-wq worker ever waits
/// on a peer.
struct SpliceMode: LoopMode, ~Copyable {
    let strategy: URingBackend.SpliceStrategy
    var connections = ConnectionTable<SpliceConnection>()
    var pipes: PipePool
    /// Buffers for what the copy path could not send at once.
    var pendingBuffers: PendingBufferPool
    /// The copy path's one read buffer, a pipe's size.
    let copyBuffer: UnsafeMutableRawPointer
    /// The idle-pipe timer's interval, and whether it is queued.
    let pipeTimeout: UnsafeMutablePointer<__kernel_timespec>
    var pipeTimerArmed = false

    /// What a readiness poll waits for: bytes, or the peer's FIN (errors and hang-ups always count).
    static var readableEvents: UInt32 { UInt32(POLLIN) | CLINUX_POLLRDHUP }
    static var sendFlags: Int32 { Int32(MSG_NOSIGNAL) }
    static var spliceFlags: UInt32 { CLINUX_SPLICE_MOVE_NONBLOCK }

    init(options: URingBackend.Options, ring: borrowing Ring) throws(EchoError) {
        strategy = options.splice ?? .poll
        pipes = PipePool(capacity: options.pipeLimit, pipeSize: options.pipeSize)
        pendingBuffers = PendingBufferPool(bufferSize: options.pipeSize)
        copyBuffer = .allocate(byteCount: options.pipeSize, alignment: 64)
        pipeTimeout = .allocate(capacity: 1)
        pipeTimeout.initialize(to: __kernel_timespec(tv_sec: 1, tv_nsec: 0))
    }

    /// The ring is torn down before the mode goes (``LoopDriver``), so no timer still reads this.
    deinit {
        copyBuffer.deallocate()
        pipeTimeout.deallocate()
    }

    /// Once per turn: with idle pipes and no timer queued, queues one (a second), so pipes no
    /// connection has needed for that long give their descriptors back.
    mutating func endTurn(_ loop: inout LoopContext) {
        guard !pipeTimerArmed && pipes.idleCount > 0 && !loop.stopping else { return }
        let sqe = loop.submission()
        io_uring_prep_timeout(sqe, pipeTimeout, 0, 0)
        sqe.pointee.user_data = UserData(.pipeTimer).rawValue
        pipeTimerArmed = true
    }

    /// The idle-pipe timer fired: the pipes that sat unused the whole second are closed, so the
    /// pool follows what the connections need now (and is empty once they are idle).
    mutating func timerFired(_ loop: inout LoopContext) {
        pipeTimerArmed = false
        _ = pipes.closeUnused(syscalls: &loop.statistics[.close])
    }

    static var acceptsNonBlocking: Bool { true }

    mutating func adopt(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        connections.reserve(fd)
        let connection = connections[fd]
        let generation = connection.pointee.generation &+ 1
        connection.pointee = SpliceConnection()
        connection.pointee.generation = generation
        connection.pointee.state = .waiting
        armReadable(fd, connection, &loop)
        return true
    }

    // MARK: Completions

    /// The splice loop submits no receive and no send: nothing to handle.
    mutating func received(on fd: Int32, result: Int32, flags: UInt32, _ loop: inout LoopContext) {}
    mutating func sent(on fd: Int32, buffer: UInt16, result: Int32, flags: UInt32, _ loop: inout LoopContext) {}

    @inline(__always)
    mutating func polled(on fd: Int32, tag: UInt16, writable: Bool, result: Int32, flags: UInt32,
                         _ loop: inout LoopContext) {
        guard let connection = live(fd, tag) else {
            // The connection has closed, but its multishot poll still reports: the removal found
            // it busy posting (EALREADY) and it lives on, holding the socket open. Removed again.
            if !writable && flags & UInt32(IORING_CQE_F_MORE) != 0 {
                removePoll(UserData(.poll, fd: fd, buffer: tag), &loop)
            }
            return
        }
        if writable {
            connection.pointee.pollOutArmed = false
            guard connection.pointee.state == .holding else { return }
            if result < 0 {
                close(fd, &loop)
                return
            }
            flushHeld(fd, connection, &loop)
            return
        }
        if strategy == .poll && flags & UInt32(IORING_CQE_F_MORE) == 0 { connection.pointee.pollArmed = false }
        if connection.pointee.state == .waiting && result >= 0 {
            readable(fd, connection, &loop)
        }
        // A multishot poll that ended (an error, an overflowing completion queue) is armed again;
        // a single-shot one only once the connection waits again (see ``readable``).
        if strategy == .poll && connection.pointee.state != .closed && !connection.pointee.pollArmed {
            armReadable(fd, connection, &loop)
        } else if strategy == .linked && result < 0 && connection.pointee.state == .waiting {
            armReadable(fd, connection, &loop)
        }
    }

    /// The open connection on `fd` whose generation is `tag`, or nil for a completion of one
    /// that has closed.
    @inline(__always)
    func live(_ fd: Int32, _ tag: UInt16) -> UnsafeMutablePointer<SpliceConnection>? {
        guard Int(fd) < connections.capacity else { return nil }
        let connection = connections[fd]
        guard connection.pointee.state != .closed && connection.pointee.generation == tag else { return nil }
        return connection
    }

    /// A waiting connection is readable: through a pipe if one is to be had, else by copying.
    @inline(__always)
    mutating func readable(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        guard let pipe = pipes.take(syscalls: &loop.statistics[.other]) else {
            copyEcho(fd, connection, &loop)
            if strategy == .linked && connection.pointee.state == .waiting { armReadable(fd, connection, &loop) }
            return
        }
        loop.statistics[.pipesTaken] &+= 1
        connection.pointee.pipe = pipe
        switch strategy {
        case .linked: submitPair(fd, connection, &loop)
        case .poll: spliceIn(fd, connection, &loop)
        }
    }

    /// Bytes are held and the socket has room (its `POLLOUT` poll fired): sends what is held.
    mutating func flushHeld(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        if connection.pointee.pending != nil {
            flushPending(fd, connection, &loop)
            return
        }
        switch strategy {
        case .linked: submitSpliceOut(fd, connection, &loop)
        case .poll: flushPipe(fd, connection, &loop)
        }
    }

    /// The connection's held bytes are all out: it reads again. A multishot poll reports only new
    /// arrivals, so what arrived meanwhile is read now; a single-shot poll armed now fires at once
    /// if bytes wait.
    mutating func resumeReading(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        connection.pointee.state = .waiting
        switch strategy {
        case .linked: armReadable(fd, connection, &loop)
        case .poll: readable(fd, connection, &loop)
        }
    }

    // MARK: Connections

    mutating func closeIdle(_ fd: Int32, _ loop: inout LoopContext) -> Bool {
        guard Int(fd) < connections.capacity, connections[fd].pointee.state != .closed else { return false }
        // Whatever the connection waits for (readiness, room, a splice in io-wq) ends with the
        // shutdown and closes it.
        loop.shutDown(Descriptor(fd, .ordinary))
        return true
    }

    /// Closes at once. A request still in flight holds its own reference to the socket and the
    /// pipe; its completion finds the slot closed (or a new generation) and is dropped.
    mutating func closeAll(_ loop: inout LoopContext) {
        for fd in 0..<Int32(connections.capacity) where connections[fd].pointee.state != .closed {
            close(fd, &loop)
        }
        _ = pipes.closeIdle(syscalls: &loop.statistics[.close])
    }

    /// Out of descriptors: the pipes no connection holds are closed, so accepting can go on.
    mutating func releaseIdleDescriptors(_ loop: inout LoopContext) -> Bool {
        pipes.closeIdle(syscalls: &loop.statistics[.close]) > 0
    }

    mutating func close(_ fd: Int32, _ loop: inout LoopContext) {
        let connection = connections[fd]
        let generation = connection.pointee.generation
        if connection.pointee.pollArmed {
            removePoll(UserData(.poll, fd: fd, buffer: generation), &loop)
            connection.pointee.pollArmed = false
        }
        if connection.pointee.pollOutArmed {
            removePoll(UserData(.pollOut, fd: fd, buffer: generation), &loop)
            connection.pointee.pollOutArmed = false
        }
        // Bytes left in the pipe close it with the connection; a splice in io-wq keeps its own
        // reference until it completes.
        let inFlight = connection.pointee.state == .splicing || connection.pointee.sending
        if connection.pointee.pipe >= 0 {
            if inFlight { connection.pointee.held = 1 }
            releasePipe(connection, &loop)
        }
        if let pending = connection.pointee.pending { pendingBuffers.give(pending) }
        connection.pointee.pending = nil
        connection.pointee.state = .closed
        loop.close(Descriptor(fd, .ordinary))
        pipes.descriptorsFreed()
        loop.statistics[.connectionsClosed] &+= 1
    }

    /// Gives the connection's pipe back: kept when empty, closed when bytes are left in it.
    @inline(__always)
    mutating func releasePipe(_ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        pipes.give(connection.pointee.pipe, empty: connection.pointee.held == 0, syscalls: &loop.statistics[.close])
        connection.pointee.pipe = -1
        connection.pointee.held = 0
        loop.statistics[.pipesReturned] &+= 1
    }

    // MARK: Polls

    /// Arms the connection's readiness poll: multishot (poll) or single-shot (linked).
    @inline(__always)
    mutating func armReadable(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        switch strategy {
        case .poll:
            io_uring_prep_poll_multishot(sqe, fd, Self.readableEvents)
            connection.pointee.pollArmed = true
        case .linked:
            io_uring_prep_poll_add(sqe, fd, Self.readableEvents)
        }
        sqe.pointee.user_data = UserData(.poll, fd: fd, buffer: connection.pointee.generation).rawValue
    }

    /// Arms a single-shot poll for room to send; the connection holds bytes and reads nothing.
    @inline(__always)
    mutating func armWritable(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_poll_add(sqe, fd, UInt32(POLLOUT))
        sqe.pointee.user_data = UserData(.pollOut, fd: fd, buffer: connection.pointee.generation).rawValue
        connection.pointee.pollOutArmed = true
    }

    /// Switches the connection to holding the bytes it could not send, until its socket has room.
    @inline(__always)
    mutating func hold(_ fd: Int32, _ connection: UnsafeMutablePointer<SpliceConnection>, _ loop: inout LoopContext) {
        connection.pointee.state = .holding
        armWritable(fd, connection, &loop)
    }

    private mutating func removePoll(_ data: UserData, _ loop: inout LoopContext) {
        let sqe = loop.submission()
        io_uring_prep_poll_remove(sqe, data.rawValue)
        sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
        sqe.pointee.user_data = UserData(.ignored, fd: data.fd).rawValue
    }
}
