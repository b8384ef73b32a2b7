import Backend
import CLibUring
import EchoSupport

/// The io_uring event loop, written once for every ``LoopMode``.
///
/// Each turn submits what the last one queued and waits for a completion
/// (`io_uring_submit_and_wait`, one system call), hands every ready completion to the mode, lets
/// the mode finish the turn, and publishes the counters. The stop signal, accepting (the
/// connection cap, ``AcceptFailure`` and its back-off), the idle timeout's tick and the test
/// hook's trigger are handled here; everything else goes to the mode.
///
/// Accepting: one multishot accept stays armed, unless the mode accepts one connection at a time
/// or the connection cap pauses at its limit — then one single-shot accept is in flight while the
/// loop is below the cap, so it can stop exactly there and leave newcomers in the backlog.
///
/// Whatever ends the loop — the stop signal, a failed ring, an error a mode cannot serve through —
/// the way out is the same: the mode shuts down and closes every connection, the final counters are
/// published, and only then is the error thrown. The last step of that way out tears the ring down,
/// which cancels whatever is still in flight, before the mode's memory is freed (when the driver
/// goes): the order is in ``finish()``, not in the order the properties are declared.
///
/// A noncopyable value on the loop thread only; generic so each mode gets its own specialized copy
/// with the handlers inlined.
struct LoopDriver<Mode: LoopMode & ~Copyable>: ~Copyable {
    private var context: LoopContext
    private var mode: Mode
    private let completions = CompletionBatch()
    private let stopFD: Int32
    private let faultInjection: RingFaultInjection?
    /// The partial-submit test hook: an invalid entry every other turn (see ``Ring/queueInvalidSubmission(enters:)``).
    private let injectsInvalidSubmission: Bool
    private var injectsThisTurn = false
    private let published: LiveStatistics
    /// The connection cap (`Int.max`: none) and what a connection over it meets.
    private let maxConnections: UInt64
    private let overLimit: ServerLimits.OverLimit
    /// Whether accepts are multishot (see above).
    private let acceptsMultishot: Bool
    /// Whether an accept request is in flight, the back-off runs, and the loop sits at the cap.
    private var acceptArmed = false
    private var acceptBackingOff = false
    private var atCap = false
    /// The idle timeout's tick, when there is one.
    private let tickNanoseconds: UInt64?

    /// At teardown, how long the driver waits in all for requests that still use memory the mode
    /// frees (the bundle mode's buffers), in rounds of ``teardownRound`` nanoseconds.
    private static var teardownRounds: Int { 25 }
    private static var teardownRound: Int { 20_000_000 }

    init(options: URingBackend.Options, listener: ListeningSocket, stop: StopSignal,
         statistics: LiveStatistics, limits: ServerLimits) throws(EchoError) {
        let ring = try Ring(entries: options.ringEntries, parameters: options.setupParameters)
        let mode = try Mode(options: options, ring: ring)
        context = LoopContext(ring: ring, listener: listener.fileDescriptor, limits: limits)
        maxConnections = limits.maxConnections.map { UInt64($0) } ?? .max
        overLimit = limits.overLimit
        acceptsMultishot = !Mode.acceptsOneAtATime && (limits.maxConnections == nil || limits.overLimit == .close)
        tickNanoseconds = limits.tickNanoseconds
        self.mode = mode
        stopFD = stop.fileDescriptor
        faultInjection = options.faultInjection
        injectsInvalidSubmission = options.injectsInvalidSubmission
        published = statistics
    }

    /// Sets up a loop for `options` and runs it on the calling thread until it stops.
    static func serve(options: URingBackend.Options, listener: ListeningSocket, stop: StopSignal,
                      statistics: LiveStatistics, limits: ServerLimits) throws(EchoError) {
        var driver = try LoopDriver(options: options, listener: listener, stop: stop, statistics: statistics,
                                    limits: limits)
        try driver.run()
    }

    /// Runs until the stop signal fires or the loop fails, then closes every connection.
    ///
    /// - Throws: the first ``EchoError`` that ended the loop (after every connection is closed).
    mutating func run() throws(EchoError) {
        context.ring.watchReadable(stopFD, as: .stop, enters: &context.statistics[.ioUringEnter])
        if let faultInjection {
            context.ring.watchReadable(faultInjection.trigger, as: .injectedFault,
                                       enters: &context.statistics[.ioUringEnter])
        }
        if let tickNanoseconds {
            context.ring.scheduleTick(nanoseconds: tickNanoseconds, enters: &context.statistics[.ioUringEnter])
        }
        mode.start(&context)
        armAccept()
        while !context.stopping {
            do throws(EchoError) {
                try context.ring.submitAndWait(enters: &context.statistics[.ioUringEnter])
            } catch {
                context.fail(error)
                break
            }
            drainCompletions()
            if _slowPath(injectsInvalidSubmission) {
                injectsThisTurn.toggle()
                if injectsThisTurn { context.ring.queueInvalidSubmission(enters: &context.statistics[.ioUringEnter]) }
            }
            mode.endTurn(&context)
            if !acceptArmed { armAccept() }
            published.publish(context.statistics)
        }
        finish()
        if let failure = context.failure { throw failure }
    }

    /// Handles every completion that is ready.
    @inline(__always)
    private mutating func drainCompletions() {
        CompletionBatch.drain(context.ring.raw, through: completions.entries) { data, result, flags in
            handle(data, result: result, flags: flags)
        }
    }

    @inline(__always)
    private mutating func handle(_ data: UserData, result: Int32, flags: UInt32) {
        switch data.operation {
        case .recv: mode.received(on: data.fd, result: result, flags: flags, &context)
        case .send: mode.sent(on: data.fd, buffer: data.buffer, result: result, flags: flags, &context)
        case .provideBuffers: mode.buffersProvided(count: data.buffer, result: result, &context)
        case .receiveCancel: mode.receiveCancelFailed(on: data.fd, result: result, &context)
        case .poll: mode.polled(on: data.fd, tag: data.buffer, writable: false, result: result, flags: flags, &context)
        case .pollOut: mode.polled(on: data.fd, tag: data.buffer, writable: true, result: result, flags: flags, &context)
        case .spliceIn: mode.spliced(on: data.fd, tag: data.buffer, outward: false, result: result, &context)
        case .spliceOut: mode.spliced(on: data.fd, tag: data.buffer, outward: true, result: result, &context)
        case .pipeTimer: mode.timerFired(&context)
        case .accept: accepted(result: result, flags: flags)
        case .acceptRetry: acceptBackingOff = false
        case .tick: tick()
        case .stop: context.stop()
        case .injectedFault: if let faultInjection { context.ring.failNextWait(code: faultInjection.code) }
        case .ignored, nil: break
        }
    }

    // MARK: Accepting

    /// Arms an accept unless one is in flight, the back-off runs, the loop stops, or (pausing at
    /// the cap) the loop is at its cap, which counts a pause.
    private mutating func armAccept() {
        guard !acceptArmed, !acceptBackingOff, !context.stopping else { return }
        if !acceptsMultishot && overLimit == .pause && context.statistics.connectionsOpen >= maxConnections {
            if !atCap { context.statistics[.acceptPauses] &+= 1 }
            atCap = true
            return
        }
        atCap = false
        context.ring.armAccept(listener: context.listener, multishot: acceptsMultishot, into: mode.accepts,
                               nonBlocking: Mode.acceptsNonBlocking, enters: &context.statistics[.ioUringEnter])
        acceptArmed = true
    }

    /// An accept completed with `result`: a connection to adopt (or, over the cap or at stop, to
    /// close at once), or a failure handled as ``AcceptFailure`` says. A request that has ended is
    /// armed again at the end of the turn.
    private mutating func accepted(result: Int32, flags: UInt32) {
        if flags & UInt32(IORING_CQE_F_MORE) == 0 { acceptArmed = false }
        guard result >= 0 else {
            switch AcceptFailure(code: -result) {
            case .exhausted:
                // Descriptors the mode held for nobody (idle pipes) are free now: accept again at once.
                if mode.releaseIdleDescriptors(&context) { return }
                context.statistics[.acceptFailures] &+= 1
                if !context.stopping && !acceptBackingOff {
                    context.ring.scheduleAcceptRetry(enters: &context.statistics[.ioUringEnter])
                    acceptBackingOff = true
                }
            case .listenerBroken:
                if !context.stopping { context.fail(SystemCall.failure("accept", result: result)) }
            case .transient, .backlogEmpty:
                break
            }
            return
        }
        let fd = result
        if context.stopping {
            context.close(Descriptor(fd, mode.accepts))
            return
        }
        if context.statistics.connectionsOpen >= maxConnections {
            // --over-limit close: in and out at once, counted.
            context.close(Descriptor(fd, mode.accepts))
            context.statistics[.acceptsRefused] &+= 1
            return
        }
        guard mode.adopt(fd, &context) else { return }
        context.statistics[.connectionsAccepted] &+= 1
        context.idle.opened(fd)
    }

    // MARK: Idle timeout

    /// The idle timeout's timer fired: the next tick is queued, and every connection silent for
    /// longer than the timeout starts closing.
    private mutating func tick() {
        guard let tickNanoseconds, !context.stopping else { return }
        context.ring.scheduleTick(nanoseconds: tickNanoseconds, enters: &context.statistics[.ioUringEnter])
        context.idle.advance()
        var cursor: Int32 = 0
        while let fd = context.idle.nextExpired(from: &cursor) {
            if mode.closeIdle(fd, &context) { context.statistics[.closedIdle] &+= 1 }
        }
    }

    /// The one way out: lets the mode shut its connections down, waits (bounded) for requests
    /// that still use the mode's memory, closes every connection, publishes the final counters,
    /// then tears the ring down. Legacy and multishot free buffers that requests still in flight
    /// may write into, and bundle leaves rings registered if unregistering failed: the kernel must
    /// let go of all of it before the mode's `deinit` frees the memory.
    private mutating func finish() {
        if mode.shutDownConnections(&context) {
            var rounds = 0
            while mode.hasConnectionsInFlight && rounds < Self.teardownRounds {
                guard context.ring.submitAndWait(nanoseconds: Self.teardownRound,
                                                 enters: &context.statistics[.ioUringEnter]) else { break }
                drainCompletions()
                rounds += 1
            }
        }
        mode.closeAll(&context)
        published.publish(context.statistics)
        context.ring.exit()
    }
}
