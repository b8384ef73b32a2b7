#if canImport(Glibc)
import Glibc
#endif
import Backend
import Synchronization
import URingBackend

/// `--stats-json PATH`: the server's counters as one JSON object, written atomically (to
/// `PATH.tmp`, then renamed over `PATH`) once listening, on every SIGUSR1, and at stop.
///
/// A benchmark runner removes `PATH`, sends SIGUSR1 and waits for `PATH` to reappear, at the
/// start and the end of its measured window, and subtracts the two.
final class StatsFile: Sendable {
    let path: String
    private let backendName: String
    private let summary: String
    private let negotiation: URingBackend.Negotiation?
    private let startedAt: MonotonicTime
    private let server: EchoServer
    /// Serialises writers (the signal thread and the main thread share `PATH.tmp`); once the
    /// final document is written it is kept, and later SIGUSR1s write it again unchanged.
    private let state = Mutex<(samples: UInt64, final: String?)>((0, nil))

    init(path: String, backendName: String, summary: String, negotiation: URingBackend.Negotiation?,
         startedAt: MonotonicTime, server: EchoServer) {
        self.path = path
        self.backendName = backendName
        self.summary = summary
        self.negotiation = negotiation
        self.startedAt = startedAt
        self.server = server
    }

    /// Writes the counters as they are now; `reason` is "start", "signal" or "stop".
    /// Once "stop" was written, every later call writes that same final document.
    func write(reason: String) throws(EchoError) {
        let result: Result<Void, EchoError> = state.withLock { state in
            if let final = state.final { return Self.writeAtomically(final, to: path) }
            state.samples += 1
            let document = json(server.statistics.snapshot(), reason: reason, sample: state.samples)
            if reason == "stop" { state.final = document }
            return Self.writeAtomically(document, to: path)
        }
        try result.get()
    }

    /// The document for `s`.
    func json(_ s: ServerStatistics, reason: String, sample: UInt64) -> String {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let unixNanoseconds = UInt64(wall.tv_sec) &* 1_000_000_000 &+ UInt64(wall.tv_nsec)
        // Counters are loaded one by one while connections come and go: never let open wrap.
        let open = s[.connectionsAccepted] >= s[.connectionsClosed] ? s.connectionsOpen : 0

        var syscalls = ServerStatistics.Counter.syscalls.map { "\"\($0.key)\":\(s[$0])" }
        syscalls.append("\"total\":\(s.syscallTotal)")
        var fields = [
            "\"backend\":\(Self.quoted(backendName))",
            "\"summary\":\(Self.quoted(summary))",
            "\"kernel_release\":\(Self.quoted(KernelVersion.runningRelease))",
            "\"left_out\":\(KernelReport.leftOutJSON(negotiation?.leftOut ?? []))",
            "\"pid\":\(getpid())",
            "\"reason\":\(Self.quoted(reason))",
            "\"sample\":\(sample)",
            "\"unix_ns\":\(unixNanoseconds)",
            "\"uptime_s\":\(Report.fixed(MonotonicTime.now().seconds(since: startedAt), 6))",
            "\"connections_open\":\(open)",
        ]
        for counter in ServerStatistics.Counter.allCases where counter.group != .syscalls {
            fields.append("\"\(counter.key)\":\(s[counter])")
        }
        fields.append("\"syscalls\":{\(syscalls.joined(separator: ","))}")
        fields.append("\"cpu\":{\"user_s\":\(Report.fixed(seconds(usage.ru_utime), 6)),"
            + "\"system_s\":\(Report.fixed(seconds(usage.ru_stime), 6))}")
        return "{" + fields.joined(separator: ",") + "}\n"
    }

    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Writes `text` to `path.tmp` and renames it over `path`, so a reader sees the old
    /// document or the new one, never half of one.
    static func writeAtomically(_ text: String, to path: String) -> Result<Void, EchoError> {
        let temporary = path + ".tmp"
        let opened = SystemCall.outcome(retryingInterrupts: true) {
            open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        guard !opened.failed else { return .failure(.statisticsFile(path: path, code: opened.error)) }
        let fd = opened.value
        var error: Int32 = 0
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = SystemCall.outcome(retryingInterrupts: true) {
                    Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                }
                guard written.value > 0 else {
                    error = written.failed ? written.error : EIO
                    return
                }
                offset += written.value
            }
        }
        // Not retried on EINTR: the descriptor is closed whatever close returns.
        let closed = SystemCall.outcome { close(fd) }
        if closed.failed && error == 0 { error = closed.error }
        if error == 0 { error = SystemCall.outcome { rename(temporary, path) }.error }
        if error != 0 {
            unlink(temporary)
            return .failure(.statisticsFile(path: path, code: error))
        }
        return .success(())
    }
}
