#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import EchoTestSupport

/// `benchmarks/no-uring`: runs a command under a seccomp filter that makes io_uring_setup, io_uring_enter
/// and io_uring_register fail with EPERM, as Docker Engine 25+'s default profile does. The filter is
/// installed by the kernel around the real `echo`, not a mocked probe.
enum NoURing {
    /// The script, beside the package's other benchmark tools (#filePath is …/Tests/EchoServerTests/this file).
    static let script: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("benchmarks/no-uring").path

    /// python3 on PATH, which the script needs; nil where it is missing.
    static let python3: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        .split(separator: ":").map { "\($0)/python3" }.first { access($0, X_OK) == 0 }

    /// Starts `echo arguments` under the filter.
    static func start(_ arguments: [String]) throws -> ChildProcess {
        guard let python3 else { throw TestFailure("python3 is not installed") }
        guard let echo = EchoBinary.path else { throw TestFailure("the echo executable was not built") }
        return try ChildProcess(executable: python3, arguments: [script, "--", echo] + arguments)
    }

    /// Runs `echo arguments` under the filter to its end (at most `timeout` seconds).
    static func run(_ arguments: [String], timeout: Double = 20) throws -> (status: EchoTestSupport.ExitStatus, stdout: String, stderr: String) {
        let child = try start(arguments)
        guard let status = child.waitForExit(timeout: timeout) else {
            child.killAndReap()
            throw TestFailure("no-uring -- echo \(arguments.joined(separator: " ")) did not exit within \(timeout) s; stderr: \(child.standardError)")
        }
        return (status, child.standardOutput, child.standardError)
    }
}

extension EchoSuite {
    @Suite("io_uring blocked by seccomp (benchmarks/no-uring)", .timeLimit(.minutes(1)),
           .enabled(if: NoURing.python3 != nil, "python3 is not installed: benchmarks/no-uring needs it"))
    struct Seccomp {
        @Test("echo with no flags: exit 1 and one line that says io_uring is refused and suggests epoll")
        func defaultRefusesWithOneLine() throws {
            let result = try NoURing.run(["--host", "127.0.0.1", "--port", String(try freeLoopbackPort())])
            let shown = "no-uring -- echo → \(result.status); stderr: \(result.stderr)"
            #expect(result.status == .exited(1), "\(shown)")
            let lines = nonEmptyLines(result.stderr)
            #expect(lines.count == 1, "stderr should be one line: \(shown)")
            let line = lines.first.map(String.init) ?? ""
            #expect(line.hasPrefix("echo: error: io_uring is unavailable: "), "\(shown)")
            #expect(line.contains("Operation not permitted") && line.contains("seccomp"), "\(shown)")
            #expect(line.hasSuffix("; try --backend epoll"), "\(shown)")
            #expect(!looksLikeCrash(result.stderr), "\(shown)")
        }

        @Test("--backend epoll under the same filter serves: the filter blocks io_uring, not the server")
        func epollServes() throws {
            let port = try freeLoopbackPort()
            let child = try NoURing.start(["--backend", "epoll", "--host", "127.0.0.1", "--port", String(port)])
            defer { child.killAndReap() }
            let up = eventually(timeout: 10) {
                guard child.isRunning, let probe = try? TestClient(port: port, connectTimeout: 0.5) else { return !child.isRunning }
                probe.close()
                return true
            }
            #expect(up && child.isRunning, "epoll did not start under the filter: \(child.exitStatus().map { "\($0)" } ?? "running"); stderr: \(child.standardError)")
            guard child.isRunning else { return }
            #expect(try echoOnce(port: port, size: 100_000) == 100_000)
            child.send(signal: SIGTERM)
            #expect(child.waitForExit(timeout: 5) == .exited(0), "stderr: \(child.standardError)")
        }

        @Test("echo --features --json under the filter: uring_available false, with the reason")
        func featuresSayUnavailable() throws {
            let result = try NoURing.run(["--features", "--json"])
            #expect(result.status == .exited(0), "stderr: \(result.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(object?["uring_available"] as? Bool == false, "stdout: \(result.stdout)")
            let reason = object?["reason"] as? String ?? ""
            #expect(reason.contains("Operation not permitted"), "reason: \(reason)")
            let features = object?["features"] as? [[String: Any]] ?? []
            #expect(!features.isEmpty && features.allSatisfy { $0["available"] as? Bool == false }, "stdout: \(result.stdout)")
            #expect(object?["default"] is NSNull, "stdout: \(result.stdout)")
        }
    }
}
