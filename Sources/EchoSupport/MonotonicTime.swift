#if canImport(Glibc)
import Glibc
#endif

/// A point on `CLOCK_MONOTONIC`, in nanoseconds: the one clock every loop, timer and report reads
/// (through the vDSO: no system call).
public struct MonotonicTime: Sendable, Comparable, Hashable {
    public var nanoseconds: UInt64

    @inline(__always)
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// Now.
    @inline(__always)
    public static func now() -> MonotonicTime {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return MonotonicTime(nanoseconds: UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec))
    }

    /// A time later than any the clock reaches.
    public static let distantFuture = MonotonicTime(nanoseconds: .max)

    /// Seconds from `earlier` to this time (negative when `earlier` is later).
    public func seconds(since earlier: MonotonicTime) -> Double {
        Double(Int64(bitPattern: nanoseconds &- earlier.nanoseconds)) / 1e9
    }

    /// This time plus `nanoseconds`, saturating.
    public func adding(nanoseconds delta: UInt64) -> MonotonicTime {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(delta)
        return MonotonicTime(nanoseconds: overflow ? .max : sum)
    }

    /// This time plus `seconds` (at least 0).
    public func adding(seconds: Double) -> MonotonicTime {
        adding(nanoseconds: UInt64(max(seconds, 0) * 1e9))
    }

    /// Whole milliseconds from `now` to this time, rounded up (0 when it has passed), for a
    /// `poll` or `epoll_wait` timeout.
    public func milliseconds(after now: MonotonicTime) -> Int32 {
        guard nanoseconds > now.nanoseconds else { return 0 }
        return Int32(clamping: (nanoseconds - now.nanoseconds + 999_999) / 1_000_000)
    }

    public static func < (lhs: MonotonicTime, rhs: MonotonicTime) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}
