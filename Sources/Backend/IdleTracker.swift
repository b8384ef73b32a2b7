/// When each connection was last active, in ticks of a coarse timer: the idle timeout of every
/// event loop.
///
/// The per-request path only stores the current tick into the connection's slot (no clock read,
/// no system call). The loop advances the tick on its own timer — a multishot timeout on
/// io_uring, the `epoll_wait` timeout on epoll — every ``ServerLimits/tickNanoseconds``, and then
/// sweeps: a connection silent for more than ``ServerLimits/ticksPerTimeout`` ticks has been
/// silent for at least the timeout. Without a timeout it does nothing and allocates nothing.
///
/// A noncopyable value on the loop's thread only.
public struct IdleTracker: ~Copyable {
    /// Whether there is an idle timeout.
    public let isEnabled: Bool
    /// The ticks the timer has fired.
    @usableFromInline private(set) var tick: UInt32 = 0
    /// Per descriptor, the tick it was last active in (none without a timeout).
    @usableFromInline var stamps: DoublingStorage<UInt32>
    /// Descriptors below this have a stamp.
    public var capacity: Int { stamps.capacity }

    public init(limits: ServerLimits) {
        isEnabled = limits.idleTimeoutNanoseconds != nil
        stamps = DoublingStorage(capacity: isEnabled ? 1024 : 0) { _ in 0 }
    }

    /// The connection on `fd` was active now: it received bytes, or its peer took some. Inlinable:
    /// a load, a branch and a store on the per-request path.
    @inlinable @inline(__always)
    public func touch(_ fd: Int32) {
        if isEnabled { stamps[Int(fd)].pointee = tick }
    }

    /// A connection was opened on `fd` (on accept, never per request): makes room and touches it.
    public mutating func opened(_ fd: Int32) {
        guard isEnabled else { return }
        if Int(fd) >= capacity {
            let now = tick
            stamps.reserve(Int(fd) + 1) { _ in now }
        }
        touch(fd)
    }

    /// The timer fired once more.
    public mutating func advance() {
        tick &+= 1
    }

    /// The sweep after a tick: the next descriptor from `cursor` on whose slot has been silent for
    /// longer than the timeout, or nil once every slot is seen. The slot is stamped again, so a
    /// connection that is closing, or a closed descriptor's slot, is looked at a timeout later; the
    /// loop checks the connection is open. Each loop calls it until it returns nil, starting at 0.
    public mutating func nextExpired(from cursor: inout Int32) -> Int32? {
        while Int(cursor) < capacity {
            let fd = cursor
            cursor += 1
            if isExpired(fd) {
                touch(fd)
                return fd
            }
        }
        return nil
    }

    /// Whether the slot of `fd` has been silent for longer than the timeout. Slots of closed
    /// descriptors may say so too: the loop checks the connection is open.
    @inlinable @inline(__always)
    public func isExpired(_ fd: Int32) -> Bool {
        isEnabled && Int(fd) < capacity && tick &- stamps[Int(fd)].pointee > ServerLimits.ticksPerTimeout
    }
}
