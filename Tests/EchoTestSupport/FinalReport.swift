/// The report `echo` prints on stderr when it stops (unless `--quiet`), read back:
///
///     echo: stopped after 3.21 s (shutdown took 4.2 ms)
///     echo:   connections  12 accepted, 12 closed, 0 accept failures
///     echo:   requests     345 (107/s)
///     echo:   bytes        12345 in (0.01 MiB), 12345 out (0.01 MiB)
///     …
///
/// The shutdown time is the server's own measure, from the stop signal to every loop joined: what
/// stop-time checks assert on, rather than a wall clock around a process's exit and reaping, which
/// a loaded machine can stretch by seconds.
struct FinalReport {
    /// Seconds from start to stop.
    let seconds: Double
    /// Seconds from the stop signal to every loop joined; nil when no signal stopped the server.
    let shutdownSeconds: Double?
    /// The report's lines, from "echo: stopped after" on.
    let lines: [Substring]

    /// The report in `stderr`, or nil when there is none: a "echo: stopped after X s" line followed
    /// by the connections, requests and bytes lines.
    init?(stderr: String) {
        let all = stderr.split(separator: "\n")
        let marker = "echo: stopped after "
        guard let start = all.firstIndex(where: { $0.hasPrefix(marker) }) else { return nil }
        let lines = Array(all[start...])
        let head = lines[0].dropFirst(marker.count)
        guard let secondsText = head.split(separator: " ").first, let seconds = Double(secondsText),
              head.dropFirst(secondsText.count).hasPrefix(" s") else { return nil }
        for section in ["connections", "requests", "bytes"] {
            guard lines.dropFirst().contains(where: { $0.hasPrefix("echo:   \(section) ") && $0.contains(where: \.isNumber) })
            else { return nil }
        }
        self.seconds = seconds
        self.lines = lines
        let took = "(shutdown took "
        if let range = head.range(of: took),
           let milliseconds = head[range.upperBound...].split(separator: " ").first.flatMap({ Double($0) }) {
            shutdownSeconds = milliseconds / 1000
        } else {
            shutdownSeconds = nil
        }
    }

    /// The first report line, for failure messages.
    var headline: String { String(lines[0]) }
}

/// Whether `text` holds the statistics the server prints when it stops (``FinalReport``).
func looksLikeStatistics(_ text: String) -> Bool {
    FinalReport(stderr: text) != nil
}

/// The server's stop line in `stderr`, or a note that there is none, for failure messages.
func stopLine(_ stderr: String) -> String {
    FinalReport(stderr: stderr)?.headline ?? "no \"echo: stopped after\" report"
}
