import ArgumentParser
import Backend

#if canImport(Glibc)
import Glibc
#endif

/// `echo-bench`: a load generator for TCP echo servers: closed loop, pipelined, open loop at a
/// fixed rate, connection churn, streams, and any of them among many idle connections.
public struct EchoBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "echo-bench",
        abstract: "A load generator for TCP echo servers: closed and open loop, pipelining, churn, streams, idle peers.",
        discussion: """
            Opens --connections persistent TCP connections (TCP_NODELAY), then each one \
            sends a message of --length bytes and waits for all of it to come back before \
            sending the next. Every message is different (its bytes depend on the \
            connection, the request number and the position) and every echoed byte is \
            checked. After --warmup seconds of traffic, the requests that complete in the \
            next --duration seconds are counted, with their latency (first byte sent to \
            last byte received) in an HdrHistogram.

            --threads splits the connections across that many epoll loops, each on its \
            own thread. The summary gives requests/s, MiB/s (one way), latency \
            percentiles, errors by kind and the generator's own CPU time, with a warning \
            when the generator kept its cores over 90% busy (then it, not the server, may \
            have set the pace). --json prints the same as one JSON object instead.

            Modes (the default is ping-pong, as above):

            --pipeline D keeps D requests in flight per connection (closed loop): a new \
            one is sent for each echo that completes; latency counts from when each was \
            issued.

            --rate R is an open loop: requests fall due at R per second across all \
            connections (--arrival uniform: evenly spaced; poisson: exponential gaps) \
            whatever the server does, and go round-robin to the connections. A connection \
            sends a request at once if it has fewer than --pipeline in flight, otherwise \
            the request waits in the connection's queue; when --queue-limit are waiting, \
            it is dropped. Latency counts from when each request was due, so a server \
            stall shows in every request it delays (wrk2's correction for coordinated \
            omission). The requests due in the window are the ones counted; echo-bench \
            waits up to a second after the window for their echoes. The summary gives the \
            target, the rate offered in the window and the rate achieved, and says \
            whether the server sustained it (every request due in the window answered).

            --requests-per-connection N is churn: each connection does N echoes, closes, \
            and a new one opens in its place at once (N=1: one request per connection). \
            Adds connections done per second, connect latency (connect start to \
            connected) and first-echo latency (connect start to the first echo's last \
            byte). A connection's messages never repeat an earlier connection's.

            --stream makes each connection write continuously, at most --stream-window \
            bytes ahead of what has come back, and read concurrently; every byte is \
            checked. Requests are bytes echoed over --length, so requests/s and MiB/s \
            keep their meaning; latency is sampled once per send (its last byte's round \
            trip).

            --idle N adds N connections opened before the warm-up that send nothing and \
            are held to the end, so what idle peers cost the server is measured. When \
            there are more than the local port range allows from one address, they bind \
            to 127.0.0.2, 127.0.0.3, ... (a server on 127.0.0.0/8); when one process's \
            descriptor limit (raised to the hard limit) cannot hold them, echo-bench \
            starts copies of itself to hold the rest. --pipeline may go with --rate; \
            --idle goes with any mode; the other modes exclude each other.

            Errors: mismatch (an echoed byte differs, or bytes came that nobody sent), \
            reset (ECONNRESET, EPIPE or another socket error), eof (the server closed the \
            connection), connect (connections never established, replacements and idle \
            ones included), stalled (a request outstanding for over a second when the \
            window closed), dropped (--rate: requests dropped at a full queue). A \
            connection that fails is closed and not reopened. Exit status: 0 without \
            errors, 1 after a mismatch, reset, eof or connect error (the summary is still \
            printed) or when no connection can be made, 64 for bad options. Stalls and \
            drops describe a slow server, not a broken one: they do not change the status.
            """
    )

    @Option(help: "The server's address: an IPv4 or IPv6 address or a host name.")
    var host: String = "127.0.0.1"

    @Option(parsing: .unconditional, help: "The server's TCP port (1-65535).")
    var port: Int = 6666

    @Option(parsing: .unconditional, help: ArgumentHelp("Persistent connections (1-1000000).", valueName: "count"))
    var connections: Int = 50

    @Option(parsing: .unconditional, help: ArgumentHelp("Bytes per message (1-16777216).", valueName: "bytes"))
    var length: Int = 128

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds measured (more than 0).", valueName: "seconds"))
    var duration: Double = 10

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds of traffic before the measurement, not counted.", valueName: "seconds"))
    var warmup: Double = 2

    @Option(parsing: .unconditional, help: ArgumentHelp("Event loops, one thread each (1-64, at most --connections).", valueName: "count"))
    var threads: Int = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds without any connect completing before the pending connects are given up.", valueName: "seconds"))
    var connectTimeout: Double = 10

    /// `--rate`, `--arrival`, `--queue-limit`, `--pipeline`, `--requests-per-connection`,
    /// `--stream`, `--stream-window`.
    @OptionGroup var modeOptions: ModeOptions

    @Option(parsing: .unconditional, help: ArgumentHelp("Idle connections held through the run (0-1000000).", valueName: "count"))
    var idle: Int = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("With --idle: idle connections per process at most (default: what the descriptor limit allows).", valueName: "count"))
    var idlePerProcess: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("With --idle: idle connections per 127.0.0.x source address (default: spread only beyond the local port range).", valueName: "count"))
    var idlePerSource: Int?

    @Flag(help: "Print one JSON object on standard output instead of the summary.")
    var json = false

    /// The internal mode of the helper processes that hold idle connections.
    @Flag(help: .private)
    var idleHelper = false

    @Option(parsing: .unconditional, help: .private)
    var idleFirst: Int = 0

    public init() {}

    /// The run the options describe.
    ///
    /// - Throws: ``BenchmarkError/invalidConfiguration(_:)`` when the mode's flags do not make a
    ///   mode (see ``ModeOptions/mode()``); the rest is checked by ``BenchmarkConfiguration/validate()``.
    public var benchmarkConfiguration: BenchmarkConfiguration {
        get throws(BenchmarkError) {
            var configuration = BenchmarkConfiguration(host: host, port: port, connections: connections, length: length,
                                                       duration: duration, warmup: warmup, threads: threads)
            configuration.connectTimeout = connectTimeout
            configuration.mode = try modeOptions.mode()
            configuration.idle = idle
            configuration.idlePerProcess = idlePerProcess
            configuration.idlePerSource = idlePerSource
            configuration.helperExecutable = Self.executablePath
            return configuration
        }
    }

    public func validate() throws {
        let configuration: BenchmarkConfiguration
        do {
            configuration = try benchmarkConfiguration
        } catch {
            throw ValidationError(error.description)
        }
        let companions: [(given: Bool, option: String, needs: String, present: Bool)] = [
            (idlePerProcess != nil, "--idle-per-process", "--idle", idle > 0),
            (idlePerSource != nil, "--idle-per-source", "--idle", idle > 0),
        ]
        for companion in companions where companion.given && !companion.present {
            throw ValidationError("\(companion.option) needs \(companion.needs)")
        }
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    public func run() throws {
        if idleHelper {
            let status = IdleHelper.serve(try benchmarkConfiguration, first: idleFirst, perSource: idlePerSource ?? 0)
            if status != 0 { throw ExitCode(status) }
            return
        }
        let report = try BenchmarkRun.run(benchmarkConfiguration)
        if json {
            print(report.json)
            if report.generatorSaturated { Self.writeError("echo-bench: " + report.saturationWarning) }
        } else {
            for line in report.summaryLines { print(line) }
        }
        if report.hasErrors { throw ExitCode.failure }
    }

    /// This executable, which helper processes run again (`/proc/self/exe`).
    static var executablePath: String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes `line` and a newline to standard error in one `write(2)`.
    public static func writeError(_ line: String) {
        StandardStream.write(line + "\n", to: 2)
    }
}
