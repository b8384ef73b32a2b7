import Backend
import EchoSupport

/// One way of driving io_uring (legacy, multishot, bundle): the parts of a loop that differ.
///
/// ``LoopDriver`` runs the loop once for every mode — it watches the stop signal, accepts (within
/// the connection cap, with the shared accept-failure policy), submits and waits, hands each
/// completion to the mode, runs the mode's end-of-turn work, ticks the idle timeout, publishes the
/// counters, and closes every connection on every way out, errors included. A mode supplies how it
/// adopts a connection, its completion handlers, its end-of-turn work, how it ends an idle
/// connection and its teardown, and owns its own state (connections, buffers). Noncopyable, and the driver is generic over it, so the compiler
/// specializes the driver for each mode and inlines the handlers: no dynamic dispatch, no
/// reference counting on the per-request path.
protocol LoopMode: ~Copyable {
    /// Allocates the mode's state and registers what it needs on `ring` (buffer rings, files).
    init(options: URingBackend.Options, ring: borrowing Ring) throws(EchoError)

    /// Queues what must be in place before the first turn (buffers for the kernel). Default: nothing.
    mutating func start(_ loop: inout LoopContext)

    /// Whether the mode accepts one connection per request (the legacy design) rather than with
    /// one multishot accept. Default: false.
    static var acceptsOneAtATime: Bool { get }

    /// The kind of descriptor accepted connections get: direct ones are indices in the ring's
    /// file table. Default: ordinary.
    var accepts: Descriptor.Kind { get }

    /// Whether accepted connections are non-blocking (`SOCK_NONBLOCK`): the splice mode makes
    /// system calls on them from the loop. Default: false.
    static var acceptsNonBlocking: Bool { get }

    /// Takes on the connection just accepted on `fd`: its state, its first receive. Returns false
    /// when it cannot (the mode has closed `fd` and counted an accept failure).
    mutating func adopt(_ fd: Int32, _ loop: inout LoopContext) -> Bool

    /// The connection on `fd` has been silent past the idle timeout: starts closing it, whatever
    /// it has in flight. Returns false when no connection is open on `fd`.
    mutating func closeIdle(_ fd: Int32, _ loop: inout LoopContext) -> Bool

    /// A receive on `fd` completed.
    mutating func received(on fd: Int32, result: Int32, flags: UInt32, _ loop: inout LoopContext)

    /// A send on `fd` completed (or, for a zero-copy send, its notification came: `IORING_CQE_F_NOTIF`).
    mutating func sent(on fd: Int32, buffer: UInt16, result: Int32, flags: UInt32, _ loop: inout LoopContext)

    /// `IORING_OP_PROVIDE_BUFFERS` of `count` buffers completed. Default: nothing (only legacy provides).
    mutating func buffersProvided(count: UInt16, result: Int32, _ loop: inout LoopContext)

    /// A cancel of the receive on `fd` (back-pressure or closing) failed with `result`: the
    /// receive had ended, or the kernel could not stop it. Default: nothing (modes that cancel
    /// receives decide).
    mutating func receiveCancelFailed(on fd: Int32, result: Int32, _ loop: inout LoopContext)

    /// A poll on `fd` (``UserData/Operation/poll`` or, with `writable`, ``UserData/Operation/pollOut``)
    /// completed; `tag` is what the mode put in ``UserData/buffer``. Default: nothing.
    mutating func polled(on fd: Int32, tag: UInt16, writable: Bool, result: Int32, flags: UInt32,
                         _ loop: inout LoopContext)

    /// A splice on `fd` completed: into its pipe, or with `outward` from the pipe back to it. Default: nothing.
    mutating func spliced(on fd: Int32, tag: UInt16, outward: Bool, result: Int32, _ loop: inout LoopContext)

    /// A timer the mode queued (``UserData/Operation/pipeTimer``) fired. Default: nothing.
    mutating func timerFired(_ loop: inout LoopContext)

    /// Accepting failed for lack of descriptors: closes what the mode keeps open without a
    /// connection needing it (idle pipes) and returns whether it closed any, so accepting goes on
    /// at once. Default: nothing to close.
    mutating func releaseIdleDescriptors(_ loop: inout LoopContext) -> Bool

    /// Work once per turn, after every completion of the turn. Default: nothing.
    mutating func endTurn(_ loop: inout LoopContext)

    /// At stop or failure, before ``closeAll(_:)``: starts ending every connection. Returns true
    /// when requests still in flight use memory that ``closeAll(_:)`` frees, so the driver lets
    /// them complete first (for a bounded time). Default: nothing to wait for.
    mutating func shutDownConnections(_ loop: inout LoopContext) -> Bool

    /// Whether connections still wait for their requests before they can close (asked while the
    /// driver waits after ``shutDownConnections(_:)``). Default: none.
    var hasConnectionsInFlight: Bool { get }

    /// Closes every connection still open. Called exactly once, on every way out of the loop.
    mutating func closeAll(_ loop: inout LoopContext)
}

extension LoopMode where Self: ~Copyable {
    static var acceptsOneAtATime: Bool { false }
    var accepts: Descriptor.Kind { .ordinary }
    static var acceptsNonBlocking: Bool { false }
    mutating func polled(on fd: Int32, tag: UInt16, writable: Bool, result: Int32, flags: UInt32,
                         _ loop: inout LoopContext) {}
    mutating func spliced(on fd: Int32, tag: UInt16, outward: Bool, result: Int32, _ loop: inout LoopContext) {}
    mutating func start(_ loop: inout LoopContext) {}
    mutating func buffersProvided(count: UInt16, result: Int32, _ loop: inout LoopContext) {}
    mutating func receiveCancelFailed(on fd: Int32, result: Int32, _ loop: inout LoopContext) {}
    mutating func endTurn(_ loop: inout LoopContext) {}
    mutating func releaseIdleDescriptors(_ loop: inout LoopContext) -> Bool { false }
    mutating func timerFired(_ loop: inout LoopContext) {}
    mutating func shutDownConnections(_ loop: inout LoopContext) -> Bool { false }
    var hasConnectionsInFlight: Bool { false }
}
