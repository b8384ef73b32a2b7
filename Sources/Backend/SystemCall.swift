#if canImport(Glibc)
import Glibc
#endif

/// The one place this package runs a system call and reads the error it failed with.
///
/// Three shapes of failure meet here:
/// - a libc call returns `-1` (or any negative value) and leaves the reason in `errno`:
///   ``run(_:retryingInterrupts:_:)`` throws it, ``outcome(retryingInterrupts:_:)`` returns it;
/// - a call returns the error number itself (`pthread_*`): ``check(_:status:)``;
/// - liburing returns `-errno`, and an io_uring completion carries `-errno` in its result:
///   ``runLiburing(_:_:)`` and ``failure(_:result:)``.
///
/// A caller that has already read the error number (from an ``Outcome``) and decides it is fatal
/// names it with ``failure(_:code:)``: no module outside this file builds the error by hand.
///
/// `EINTR` is retried only when the caller says so (`retryingInterrupts`): right for calls that
/// can simply be made again (`read`, `send`, `write`, `accept`), wrong for `close` (the
/// descriptor is gone whatever it returned) and for a wait the caller wants to see interrupted.
///
/// Everything on the call path is `@inlinable @inline(__always)` (inlinable, so other modules get
/// the body, not a call to the generic): the closure is inlined with it, and the error number is
/// read from thread-local `errno` only on the failing branch. The per-request reads and sends
/// of the epoll and blocking loops compile to the call, one compare and a branch, as before.
///
/// swift-system 1.8.1 (`SystemPackage`: `Errno`, `FileDescriptor`) is not used, from its source:
/// `FileDescriptor.read(into:)` and `write(_:)` are untyped `throws` over `_read`/`_write`, which
/// are `@usableFromInline` but not inlinable. So each read or send would be an out-of-line call
/// into SystemPackage, and each `EAGAIN` of a non-blocking socket would box an `Errno` in an
/// `any Error` on the heap. It has no `send` with flags (`MSG_NOSIGNAL`), no `accept4`, no `epoll`
/// and no io_uring direct descriptors, which are most of what the loops call (its own `IORing` is
/// not liburing, which the uring loop is built on). The errors must end as ``EchoError`` anyway.
/// What it would bring, `strerror` text and a typed error number, ``EchoError/message(for:)``
/// and an `Int32` already give.
public enum SystemCall {
    /// What a call that may fail returned: its value, or the error number it failed with.
    public struct Outcome<Value: BinaryInteger> {
        /// What the call returned (negative when it failed).
        public let value: Value
        /// The error number when ``value`` is negative; 0 otherwise.
        public let error: Int32

        @inlinable @inline(__always)
        init(value: Value, error: Int32) {
            self.value = value
            self.error = error
        }

        /// Whether the call failed.
        @inlinable @inline(__always)
        public var failed: Bool { value < 0 }
    }

    /// The error number the last failed call left on this thread.
    @inlinable @inline(__always)
    public static var lastError: Int32 { Glibc.errno }

    /// Runs `call` and returns what it returned with, when it failed (a negative result), the error
    /// number. With `retryingInterrupts`, a call interrupted by a signal (`EINTR`) is made again.
    ///
    /// For the per-request path, where failures such as `EAGAIN` are part of the work and must not
    /// become thrown errors.
    @inlinable @inline(__always)
    public static func outcome<Value: BinaryInteger>(retryingInterrupts: Bool = false,
                                                     _ call: () -> Value) -> Outcome<Value> {
        while true {
            let value = call()
            if _fastPath(value >= 0) { return Outcome(value: value, error: 0) }
            let code = lastError
            if retryingInterrupts && code == EINTR { continue }
            return Outcome(value: value, error: code)
        }
    }

    /// Runs `call`; a negative result throws ``EchoError/system(_:errno:)`` named `name`. With
    /// `retryingInterrupts`, a call interrupted by a signal (`EINTR`) is made again.
    @inlinable @inline(__always)
    @discardableResult
    public static func run<Value: BinaryInteger>(_ name: @autoclosure () -> String, retryingInterrupts: Bool = false,
                                                 _ call: () -> Value) throws(EchoError) -> Value {
        let result = outcome(retryingInterrupts: retryingInterrupts, call)
        if result.failed { throw .system(name(), errno: result.error) }
        return result.value
    }

    /// Runs a liburing `call`, which returns `-errno` when it fails; a negative result throws
    /// ``EchoError/system(_:errno:)`` named `name`.
    @inlinable @inline(__always)
    @discardableResult
    public static func runLiburing(_ name: @autoclosure () -> String, _ call: () -> Int32) throws(EchoError) -> Int32 {
        let status = call()
        if status < 0 { throw failure(name(), result: status) }
        return status
    }

    /// A call that returns the error number itself (0 for success), as `pthread_create` does:
    /// throws ``EchoError/system(_:errno:)`` named `name` when `status` is not 0.
    @inlinable @inline(__always)
    public static func check(_ name: @autoclosure () -> String, status: Int32) throws(EchoError) {
        if status != 0 { throw .system(name(), errno: status) }
    }

    /// The error an io_uring completion's (or a liburing call's) negative `result` stands for.
    public static func failure(_ name: String, result: Int32) -> EchoError {
        .system(name, errno: -result)
    }

    /// The error `name` failed with, `code` being the error number an ``Outcome`` carried.
    public static func failure(_ name: String, code: Int32) -> EchoError {
        .system(name, errno: code)
    }

    /// The error the last failed call on this thread left, named `name`.
    public static func lastFailure(_ name: String) -> EchoError {
        .system(name, errno: lastError)
    }
}
