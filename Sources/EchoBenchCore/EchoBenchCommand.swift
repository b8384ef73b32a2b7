import ArgumentParser
import Backend

#if canImport(Glibc)
import Glibc
#endif

/// `echo-bench`: a closed-loop load generator for TCP echo servers.
public struct EchoBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "echo-bench",
        abstract: "A closed-loop load generator for TCP echo servers.",
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

            Errors: mismatch (an echoed byte differs), reset (ECONNRESET, EPIPE or another \
            socket error), eof (the server closed the connection), connect (connections \
            never established), stalled (a request outstanding for over a second when the \
            window closed). A connection that fails is closed and not reopened. Exit \
            status: 0 without errors, 1 after a mismatch, reset, eof or connect error (the \
            summary is still printed) or when no connection can be made, 64 for bad options.
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

    @Flag(help: "Print one JSON object on standard output instead of the summary.")
    var json = false

    public init() {}

    /// The run the options describe.
    public var benchmarkConfiguration: BenchmarkConfiguration {
        var configuration = BenchmarkConfiguration(host: host, port: port, connections: connections, length: length,
                                                   duration: duration, warmup: warmup, threads: threads)
        configuration.connectTimeout = connectTimeout
        return configuration
    }

    public func validate() throws {
        do {
            try benchmarkConfiguration.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    public func run() throws {
        let report = try BenchmarkRun.run(benchmarkConfiguration)
        if json {
            print(report.json)
            if report.generatorSaturated { Self.writeError("echo-bench: " + report.saturationWarning) }
        } else {
            for line in report.summaryLines { print(line) }
        }
        if report.hasErrors { throw ExitCode.failure }
    }

    /// Writes `line` and a newline to standard error in one `write(2)`.
    public static func writeError(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = write(2, base + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
