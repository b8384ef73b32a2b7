#if canImport(Glibc)
import Glibc
#endif
import Backend
import Synchronization

/// Lines on standard error, each written with one `write(2)` so lines from different threads
/// never interleave.
final class Console: Sendable {
    private let closed = Mutex(false)

    /// Writes `line` unless ``close()`` was called.
    func write(_ line: String) {
        closed.withLock { closed in
            if !closed { Console.writeLine(line) }
        }
    }

    /// Stops ``write(_:)``, so no periodic line comes after the final report.
    func close() {
        closed.withLock { $0 = true }
    }

    /// Writes `line` whether or not the console is closed.
    func writeAfterClose(_ line: String) {
        Console.writeLine(line)
    }

    /// Writes `line` and a newline to standard error.
    static func writeLine(_ line: String) {
        StandardStream.write(line + "\n", to: 2)
    }
}

/// When the stop signal arrived, written by the signal thread and read once the loops are joined.
final class StopClock: Sendable {
    private let requestedAt = Atomic<UInt64>(0)

    func markRequested() {
        requestedAt.store(MonotonicTime.now().nanoseconds, ordering: .releasing)
    }

    /// Seconds since ``markRequested()``, or nil when it was never called.
    func secondsSinceRequest() -> Double? {
        let nanoseconds = requestedAt.load(ordering: .acquiring)
        guard nanoseconds != 0 else { return nil }
        return MonotonicTime.now().seconds(since: MonotonicTime(nanoseconds: nanoseconds))
    }
}

/// A set of signals blocked in every thread and taken with `sigwait` by one.
struct SignalSet: @unchecked Sendable {
    let set: sigset_t

    /// Blocks `signals` in the calling thread; threads it starts afterwards inherit the mask.
    static func blockInCallingThread(_ signals: [Int32]) -> SignalSet {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        return SignalSet(set: set)
    }
}

/// The thread that turns SIGINT and SIGTERM into a stop, and SIGUSR1 into a statistics sample.
enum SignalWatcher {
    /// Starts a thread that waits for `signals`: the first SIGINT or SIGTERM runs `stop`; a second
    /// one, when the stop hangs, ends the process at once. Each SIGUSR1 runs `sample` (and is
    /// otherwise ignored, so a stray one never kills the server).
    static func start(_ signals: SignalSet, console: Console, quiet: Bool,
                      sample: (@Sendable () -> Void)? = nil,
                      stop: @escaping @Sendable () -> Void) throws(EchoError) {
        _ = try LoopThread(name: "echo-signals") {
            var set = signals.set
            var received = 0
            while true {
                var number: Int32 = 0
                guard sigwait(&set, &number) == 0 else { continue }
                if number == SIGUSR1 {
                    sample?()
                    continue
                }
                received += 1
                if received == 1 {
                    if !quiet { console.write("echo: \(name(of: number)) received, stopping") }
                    stop()
                } else {
                    Console.writeLine("echo: second \(name(of: number)), exiting without waiting")
                    _exit(128 + number)
                }
            }
        }
    }

    static func name(of signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(signal)"
        }
    }
}

/// The thread behind `--stats-interval`: one line per interval.
enum IntervalReporter {
    static func start(server: EchoServer, seconds: Double, console: Console) throws(EchoError) {
        _ = try LoopThread(name: "echo-stats") {
            var previous = server.statistics.snapshot()
            var previousTime = MonotonicTime.now()
            var deadline = previousTime.adding(seconds: seconds)
            while !server.stopSignal.isRequested {
                let now = MonotonicTime.now()
                if now < deadline {
                    // Sleeps until the deadline, or until the stop's eventfd becomes readable.
                    var descriptor = pollfd(fd: server.stopSignal.fileDescriptor, events: Int16(POLLIN), revents: 0)
                    _ = poll(&descriptor, 1, max(deadline.milliseconds(after: now), 1))
                    continue
                }
                let current = server.statistics.snapshot()
                let elapsed = now.seconds(since: previousTime)
                console.write(Report.interval(current: current, previous: previous, seconds: elapsed))
                previous = current
                previousTime = now
                deadline = deadline.adding(seconds: seconds)
                if deadline < now { deadline = now.adding(seconds: seconds) }  // fell behind: skip
            }
        }
    }
}

/// Text for the periodic and final statistics.
enum Report {
    /// One line: connections open, requests/s and MiB/s in and out since `previous`.
    static func interval(current: ServerStatistics, previous: ServerStatistics, seconds: Double) -> String {
        let elapsed = max(seconds, 1e-9)
        let requests = Double(current[.requests] &- previous[.requests]) / elapsed
        let mibIn = Double(current[.bytesReceived] &- previous[.bytesReceived]) / elapsed / 1_048_576
        let mibOut = Double(current[.bytesSent] &- previous[.bytesSent]) / elapsed / 1_048_576
        // The counters are loaded one by one while connections come and go: clamp, so a close
        // seen without its accept cannot wrap the difference around.
        let open = current[.connectionsAccepted] >= current[.connectionsClosed] ? current.connectionsOpen : 0
        return "echo: \(open) connections open, \(fixed(requests, 0)) requests/s, "
            + "\(fixed(mibIn, 2)) MiB/s in, \(fixed(mibOut, 2)) MiB/s out"
    }

    /// The report printed on stop.
    /// `shutdown` is the time from the stop signal to every loop joined, when a signal stopped it.
    static func final(_ s: ServerStatistics, seconds: Double, shutdown: Double? = nil) -> [String] {
        let took = shutdown.map { " (shutdown took \(fixed($0 * 1000, 1)) ms)" } ?? ""
        var lines = ["echo: stopped after \(fixed(seconds, 2)) s\(took)"]
        let connections = ServerStatistics.Counter.allCases.filter { $0.group == .connections && $0 != .connectionsAccepted }
            .filter { s[$0] > 0 || $0 == .connectionsClosed || $0 == .acceptFailures }
            .map { "\(s[$0]) " + $0.key.dropping(prefix: "connections_").replacingUnderscores() }
        lines.append("echo:   connections  \(s[.connectionsAccepted]) accepted, " + connections.joined(separator: ", "))
        let rate = seconds > 0 ? " (\(fixed(Double(s[.requests]) / seconds, 0))/s)" : ""
        lines.append("echo:   requests     \(s[.requests])\(rate)")
        lines.append("echo:   bytes        \(s[.bytesReceived]) in (\(mebibytes(s[.bytesReceived]))), "
            + "\(s[.bytesSent]) out (\(mebibytes(s[.bytesSent])))")
        if s[.bufferBytesLeaked] > 0 {
            lines.append("echo:   leaked       \(s[.bufferBytesLeaked]) bytes of buffers (\(mebibytes(s[.bufferBytesLeaked]))): "
                + "the kernel may still hold them")
        }
        lines.append("echo:   syscalls     \(s.syscallTotal) in total\(perRequest(s.syscallTotal, s[.requests], suffix: ", "))")
        let kinds = ServerStatistics.Counter.syscalls.filter { s[$0] > 0 }
        let nameWidth = (kinds.map { $0.key.count }.max() ?? 0) + 2
        let width = kinds.map { String(s[$0]).count }.max() ?? 0
        for kind in kinds {
            lines.append("echo:     " + padRight(kind.key, nameWidth) + padLeft(String(s[kind]), width)
                + perRequest(s[kind], s[.requests], suffix: "  "))
        }
        return lines
    }

    private static func perRequest(_ count: UInt64, _ requests: UInt64, suffix separator: String) -> String {
        guard requests > 0 else { return "" }
        return "\(separator)\(fixed(Double(count) / Double(requests), 3)) per request"
    }

    private static func mebibytes(_ bytes: UInt64) -> String {
        "\(fixed(Double(bytes) / 1_048_576, 2)) MiB"
    }

    /// `value` with `digits` decimals ("-" when it is not finite).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "-" }
        return DecimalText.fixed(value, digits) ?? String(value)
    }

    private static func padRight(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}

extension String {
    /// The text padded with spaces to `width` characters (at least one space after it).
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }

    /// Without `prefix`, when it starts with it.
    func dropping(prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }

    /// `closed_idle` as `closed idle`: a counter's key as words.
    func replacingUnderscores() -> String {
        String(map { $0 == "_" ? " " : $0 })
    }
}

extension Substring {
    /// Without leading and trailing spaces.
    func trimmingCharacters() -> String {
        var slice = self[...]
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return String(slice)
    }
}
