import Backend
import CLibUring

/// The io_uring event loop, written once for every ``LoopMode``.
///
/// Each turn submits what the last one queued and waits for a completion
/// (`io_uring_submit_and_wait`, one system call), hands every ready completion to the mode, lets
/// the mode finish the turn, and publishes the counters. The stop signal, the accept back-off and
/// the test hook's trigger are handled here; everything else goes to the mode.
///
/// Whatever ends the loop — the stop signal, a failed ring, an error a mode cannot serve through —
/// the way out is the same: the mode shuts down and closes every connection, the final counters are
/// published, and only then is the error thrown. The ring is torn down when the driver goes, which
/// cancels whatever is still in flight.
///
/// A noncopyable value on the loop thread only; generic so each mode gets its own specialized copy
/// with the handlers inlined.
struct LoopDriver<Mode: LoopMode & ~Copyable>: ~Copyable {
    private var context: LoopContext
    private var mode: Mode
    private let completions = CompletionBatch()
    private let stopFD: Int32
    private let faultInjection: RingFaultInjection?
    private let published: LiveStatistics

    /// At teardown, how long the driver waits in all for requests that still use memory the mode
    /// frees (the bundle mode's buffers), in rounds of ``teardownRound`` nanoseconds.
    private static var teardownRounds: Int { 25 }
    private static var teardownRound: Int { 20_000_000 }

    init(options: URingBackend.Options, listener: ListeningSocket, stop: StopSignal,
         statistics: LiveStatistics) throws(EchoError) {
        let ring = try Ring(entries: options.ringEntries, parameters: options.setupParameters)
        let mode = try Mode(options: options, ring: ring)
        context = LoopContext(ring: ring, listener: listener.fileDescriptor)
        self.mode = mode
        stopFD = stop.fileDescriptor
        faultInjection = options.faultInjection
        published = statistics
    }

    /// Sets up a loop for `options` and runs it on the calling thread until it stops.
    static func serve(options: URingBackend.Options, listener: ListeningSocket, stop: StopSignal,
                      statistics: LiveStatistics) throws(EchoError) {
        var driver = try LoopDriver(options: options, listener: listener, stop: stop, statistics: statistics)
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
        mode.start(&context)
        mode.armAccept(&context)
        while !context.stopping {
            do throws(EchoError) {
                try context.ring.submitAndWait(enters: &context.statistics[.ioUringEnter])
            } catch {
                context.fail(error)
                break
            }
            drainCompletions()
            mode.endTurn(&context)
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
        case .accept: mode.accepted(result: result, flags: flags, &context)
        case .acceptRetry: if !context.stopping { mode.armAccept(&context) }
        case .stop: context.stop()
        case .injectedFault: if let faultInjection { context.ring.failNextWait(errno: faultInjection.errno) }
        case .ignored, nil: break
        }
    }

    /// The one way out: lets the mode shut its connections down, waits (bounded) for requests
    /// that still use the mode's memory, closes every connection, publishes the final counters.
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
    }
}
