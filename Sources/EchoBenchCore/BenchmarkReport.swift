import Backend
import Histogram

/// What a benchmark run measured.
///
/// Requests, bytes and latencies cover the measured window only (echoes that completed in it;
/// `--rate`: requests due in it); errors cover the whole run, connect phase, warm-up and idle
/// connections included.
public struct BenchmarkReport: Sendable {
    /// The generator's own CPU time over the measured window.
    public struct CPUUsage: Sendable, Equatable {
        /// User-mode seconds, every thread of the process.
        public var userSeconds: Double
        /// Kernel-mode seconds, every thread of the process.
        public var systemSeconds: Double
        /// `(user + system) / window`: 1.0 is one core busy for the whole window.
        public var shareOfOneCore: Double
        /// Cores the loops can keep busy: `min(threads, CPUs in the affinity mask)`.
        public var coresUsable: Int
    }

    /// Latencies in microseconds.
    public struct LatencySummary: Sendable, Equatable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
        public var mean: Double

        /// The percentiles of `histogram` (nanoseconds), all 0 when it is empty.
        public init(_ histogram: Histogram<UInt64>) {
            func micro(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1000 }
            guard histogram.totalCount > 0 else {
                self.init(p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0)
                return
            }
            self.init(p50: micro(histogram.valueAtPercentile(50)), p90: micro(histogram.valueAtPercentile(90)),
                      p99: micro(histogram.valueAtPercentile(99)), p999: micro(histogram.valueAtPercentile(99.9)),
                      max: micro(histogram.maxRecorded), mean: histogram.mean / 1000)
        }

        init(p50: Double, p90: Double, p99: Double, p999: Double, max: Double, mean: Double) {
            self.p50 = p50
            self.p90 = p90
            self.p99 = p99
            self.p999 = p999
            self.max = max
            self.mean = mean
        }

        /// `{"p50":…,"p90":…,"p99":…,"p999":…,"max":…,"mean":…}`, one decimal.
        var json: String {
            "{\"p50\":\(JSONText.fixed(p50, 1)),\"p90\":\(JSONText.fixed(p90, 1)),\"p99\":\(JSONText.fixed(p99, 1)),"
                + "\"p999\":\(JSONText.fixed(p999, 1)),\"max\":\(JSONText.fixed(max, 1)),\"mean\":\(JSONText.fixed(mean, 1))}"
        }

        /// `p50 … p90 … p99 … p99.9 … max … mean …`, for the summary.
        var text: String {
            "p50 \(JSONText.fixed(p50, 1))  p90 \(JSONText.fixed(p90, 1))  p99 \(JSONText.fixed(p99, 1))  "
                + "p99.9 \(JSONText.fixed(p999, 1))  max \(JSONText.fixed(max, 1))  mean \(JSONText.fixed(mean, 1))"
        }
    }

    public var configuration: BenchmarkConfiguration
    /// Seconds of the measured window (its deadlines' difference: `duration`, to the nanosecond).
    public var elapsedSeconds: Double
    /// Requests (round trips) completed in the window (`--rate`: due in the window and answered;
    /// `--stream`: bytes echoed in the window over `length`).
    public var requests: UInt64
    /// Latency of each counted request, in nanoseconds, from when it was issued (closed loop: its
    /// first send; `--rate`: when it was due) to its echo's last byte; `--stream`: one sample per
    /// send, from the send to the echo of its last byte.
    public var latency: Histogram<UInt64>
    public var errors: ErrorCounts
    /// Connections that completed their connect.
    public var connectionsEstablished: Int
    /// Seconds the connect phase took (not part of the JSON report).
    public var connectSeconds: Double
    public var cpu: CPUUsage
    /// The window in wall-clock time, nanoseconds since the Unix epoch.
    public var windowStartUnixNanoseconds: UInt64
    public var windowEndUnixNanoseconds: UInt64

    /// `--rate`: requests due in the window (``requests`` counts those of them answered).
    public var scheduledInWindow: UInt64 = 0
    /// Connections that completed their connect over the run, idle ones aside: the connect phase's
    /// and, with churn, every replacement. The server accepts exactly these.
    public var connectionsOpened: UInt64 = 0
    /// Churn: connections that did all their echoes and closed in the window.
    public var connectionsCompleted: UInt64 = 0
    /// Churn: connect latency (nanoseconds, connect start to `EPOLLOUT`) of connections opened in
    /// the window.
    public var connectLatency = ClientLoop.histogram()
    /// Churn: nanoseconds from a connect's start to its first echo's last byte, for connections
    /// opened in the window.
    public var firstEchoLatency = ClientLoop.histogram()
    /// `--stream`: bytes echoed and verified in the window.
    public var streamBytes: UInt64 = 0
    /// `--idle`: idle connections established, helper processes that held some, and source
    /// addresses they used.
    public var idleEstablished = 0
    public var idleProcesses = 0
    public var idleSources = 0

    public var requestsPerSecond: Double {
        elapsedSeconds > 0 ? Double(requests) / elapsedSeconds : 0
    }

    /// Mebibytes per second echoed, one way.
    public var mebibytesPerSecond: Double {
        elapsedSeconds > 0 ? Double(bytes) / elapsedSeconds / 1_048_576 : 0
    }

    /// Whether any mismatch, reset, end of stream or failed connect happened (stalls alone do not
    /// count: a server that serves clients one at a time stalls the others by design).
    public var hasErrors: Bool { errors.failures > 0 }

    /// Whether the generator was busy for more than 90% of the cores it can use: its own limit,
    /// not the server's, may have set the pace.
    public var generatorSaturated: Bool {
        cpu.shareOfOneCore > 0.9 * Double(max(cpu.coresUsable, 1))
    }

    /// The latency percentiles, in microseconds.
    public var latencySummary: LatencySummary { LatencySummary(latency) }

    // MARK: Output

    /// The report as one JSON object on one line (the benchmark runner parses it).
    public var json: String {
        let c = configuration
        let l = latencySummary
        var fields: [String] = []
        fields.append("\"host\":\(JSONText.string(c.host))")
        fields.append("\"port\":\(c.port)")
        fields.append("\"connections\":\(c.connections)")
        fields.append("\"length\":\(c.length)")
        fields.append("\"threads\":\(c.threads)")
        fields.append("\"warmup_s\":\(JSONText.number(c.warmup))")
        fields.append("\"duration_s\":\(JSONText.number(c.duration))")
        fields.append("\"elapsed_s\":\(JSONText.fixed(elapsedSeconds, 6))")
        fields.append("\"requests\":\(requests)")
        fields.append("\"requests_per_second\":\(JSONText.fixed(requestsPerSecond, 1))")
        fields.append("\"mib_per_second\":\(JSONText.fixed(mebibytesPerSecond, 3))")
        fields.append("\"latency_us\":\(l.json)")
        fields.append("\"errors\":{\"mismatch\":\(errors.mismatch),\"reset\":\(errors.reset),\"eof\":\(errors.eof),"
            + "\"connect\":\(errors.connect),\"stalled\":\(errors.stalled),\"dropped\":\(errors.dropped)}")
        fields.append("\"connections_established\":\(connectionsEstablished)")
        fields.append("\"cpu\":{\"user_s\":\(JSONText.fixed(cpu.userSeconds, 3)),\"system_s\":\(JSONText.fixed(cpu.systemSeconds, 3)),"
            + "\"share_of_one_core\":\(JSONText.fixed(cpu.shareOfOneCore, 3))}")
        fields.append("\"window\":{\"start_unix_ns\":\(windowStartUnixNanoseconds),\"end_unix_ns\":\(windowEndUnixNanoseconds)}")
        fields += modeFields
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The human-readable summary, one line per element.
    public var summaryLines: [String] {
        let c = configuration
        let l = latencySummary
        var lines: [String] = []
        lines.append("echo-bench: \(c.endpoint), \(c.connections) connection\(c.connections == 1 ? "" : "s") of \(c.length) B, "
            + "\(c.threads) thread\(c.threads == 1 ? "" : "s"), warm-up \(JSONText.number(c.warmup)) s, window \(JSONText.fixed(elapsedSeconds, 3)) s")
        lines.append("  requests     \(requests): \(JSONText.fixed(requestsPerSecond, 1)) requests/s, "
            + "\(JSONText.fixed(mebibytesPerSecond, 2)) MiB/s each way")
        lines.append("  latency µs   " + l.text)
        lines.append("  connections  \(connectionsEstablished) of \(c.connections) established in \(JSONText.fixed(connectSeconds, 3)) s")
        lines += modeSummaryLines
        let total = errors.failures &+ errors.stalled &+ errors.dropped
        lines.append("  errors       \(total == 0 ? "none" : String(total)): mismatch \(errors.mismatch), reset \(errors.reset), "
            + "eof \(errors.eof), connect \(errors.connect), stalled \(errors.stalled), dropped \(errors.dropped)")
        lines.append("  generator    CPU \(JSONText.fixed(cpu.userSeconds, 2)) s user + \(JSONText.fixed(cpu.systemSeconds, 2)) s system "
            + "= \(JSONText.fixed(cpu.shareOfOneCore * 100, 0))% of one core (\(cpu.coresUsable) usable)")
        if generatorSaturated { lines.append("  " + saturationWarning) }
        return lines
    }

    /// The warning printed when ``generatorSaturated``.
    public var saturationWarning: String {
        "warning: the generator used \(JSONText.fixed(cpu.shareOfOneCore * 100, 0))% of one core with "
            + "\(cpu.coresUsable) usable: it may have been the bottleneck (try more --threads or another CPU)"
    }
}

/// JSON and fixed-point text without Foundation.
enum JSONText {
    /// `value` with `digits` decimals ("0" for NaN and infinities, which JSON cannot carry).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "0" }
        return DecimalText.fixed(value, digits) ?? number(value)
    }

    /// The shortest text that reads back as `value` ("2.0", "0.25", "1e-05"), valid JSON.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        return value.description
    }

    /// A JSON string literal.
    static func string(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
