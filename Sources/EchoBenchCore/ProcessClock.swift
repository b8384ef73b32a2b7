#if canImport(Glibc)
import Glibc
#endif
import EchoSupport

/// Clocks, sleeps and the process's CPU time.
enum ProcessClock {
    /// `CLOCK_MONOTONIC` in nanoseconds (``MonotonicTime``, the one clock).
    @inline(__always)
    static func monotonic() -> UInt64 {
        MonotonicTime.now().nanoseconds
    }

    /// `CLOCK_REALTIME` in nanoseconds since the Unix epoch.
    static func realtime() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// Sleeps until `CLOCK_MONOTONIC` reaches `deadline` (nanoseconds).
    static func sleep(until deadline: UInt64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil) == EINTR {}
    }

    /// `seconds` as nanoseconds, rounded.
    static func nanoseconds(_ seconds: Double) -> UInt64 {
        UInt64((seconds * 1e9).rounded())
    }

    /// Whole milliseconds from `now` to `deadline`, rounded up, for an `epoll_wait` timeout.
    @inline(__always)
    static func milliseconds(from now: UInt64, to deadline: UInt64) -> Int32 {
        MonotonicTime(nanoseconds: deadline).milliseconds(after: MonotonicTime(nanoseconds: now))
    }

    /// User and system CPU seconds the whole process (every thread) has used.
    static func processCPU() -> (user: Double, system: Double) {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return (0, 0) }
        func seconds(_ value: timeval) -> Double { Double(value.tv_sec) + Double(value.tv_usec) / 1e6 }
        return (seconds(usage.ru_utime), seconds(usage.ru_stime))
    }

    /// CPUs this process may run on: the bits of `Cpus_allowed` in `/proc/self/status` (what
    /// `taskset` sets), or the online CPUs when that cannot be read.
    static func allowedCPUCount() -> Int {
        let online = max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1)
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return online }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let count = SystemCall.outcome(retryingInterrupts: true) {
                chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            }.value
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("Cpus_allowed:") {
            var count = 0
            for character in line.dropFirst("Cpus_allowed:".count) {
                if let digit = character.hexDigitValue { count += digit.nonzeroBitCount }
            }
            return count > 0 ? min(count, online) : online
        }
        return online
    }
}
