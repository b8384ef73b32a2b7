#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The counters of a server in a child process, read from its `--stats-json` file: the way to wait
/// for connections to be accepted or served, instead of sleeping for a guessed time.
///
/// The protocol is the benchmark runner's (see `echo --help`): remove the file, send SIGUSR1, wait
/// for the file to reappear. The server writes it to `PATH.tmp` and renames it, so a file that
/// exists is a whole document.
extension ServerProcess {
    /// The server's counters now: the `--stats-json` document as JSON, e.g. `connections_open`,
    /// `connections_accepted`, `requests`, `bytes_received`, `syscalls` (an object).
    /// Throws when the server was not started with `statistics: true`, has ended, or writes no
    /// document within `timeout` seconds.
    func statistics(timeout: Double = 5) throws -> [String: Any] {
        guard let statsPath else { throw TestFailure("the server was started without statistics: true") }
        unlink(statsPath)
        child.send(signal: SIGUSR1)
        let deadline = monotonicNow() + timeout
        while access(statsPath, F_OK) != 0 {
            if let status = child.exitStatus() {
                throw TestFailure("echo ended (\(status)) before writing its statistics; stderr: \(child.standardError)")
            }
            if monotonicNow() >= deadline {
                throw TestFailure("echo wrote no --stats-json document within \(timeout) s of SIGUSR1; stderr: \(child.standardError)")
            }
            usleep(2000)
        }
        return try Self.readStatistics(at: statsPath)
    }

    /// The document in the `--stats-json` file as it is, without asking for a new one: after the
    /// server stopped, its final counters (`"reason": "stop"`).
    func writtenStatistics() throws -> [String: Any] {
        guard let statsPath else { throw TestFailure("the server was started without statistics: true") }
        return try Self.readStatistics(at: statsPath)
    }

    /// Samples the counters every 10 ms until `condition` holds; returns that sample. Throws, with
    /// `what` and the last sample, when it does not hold within `timeout` seconds.
    @discardableResult
    func waitUntil(_ what: String, timeout: Double = 5, _ condition: ([String: Any]) -> Bool) throws -> [String: Any] {
        let deadline = monotonicNow() + timeout
        while true {
            let sample = try statistics(timeout: max(0.5, deadline - monotonicNow()))
            if condition(sample) { return sample }
            if monotonicNow() >= deadline {
                throw TestFailure("echo: not \(what) within \(timeout) s; last statistics: \(sample)")
            }
            usleep(10_000)
        }
    }

    /// Waits until the server holds at least `count` connections (`connections_open`).
    @discardableResult
    func waitForOpenConnections(atLeast count: Int, timeout: Double = 5) throws -> [String: Any] {
        try waitUntil("\(count) connections open", timeout: timeout) { $0.integer("connections_open") >= count }
    }

    /// Waits until the server has accepted at least `count` connections since it started
    /// (`connections_accepted`, the start-up probe included).
    @discardableResult
    func waitForAcceptedConnections(atLeast count: Int, timeout: Double = 5) throws -> [String: Any] {
        try waitUntil("\(count) connections accepted", timeout: timeout) { $0.integer("connections_accepted") >= count }
    }

    private static func readStatistics(at path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TestFailure("cannot read the --stats-json file \(path)")
        }
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestFailure("the --stats-json file is not a JSON object: \(String(decoding: data, as: UTF8.self))")
        }
        return document
    }
}

extension Dictionary where Key == String, Value == Any {
    /// The integer at `key` in a `--stats-json` document (a dotted key reaches into an object:
    /// "syscalls.read"); -1 when it is missing or not a number, which no counter equals.
    func integer(_ key: String) -> Int {
        let path = key.split(separator: ".").map(String.init)
        var object: [String: Any] = self
        for name in path.dropLast() {
            guard let inner = object[name] as? [String: Any] else { return -1 }
            object = inner
        }
        return (object[path.last ?? ""] as? NSNumber)?.intValue ?? -1
    }
}
