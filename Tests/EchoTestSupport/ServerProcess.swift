#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import EchoSupport
import Synchronization

/// Where the built `echo` executable is, if it was built.
enum EchoBinary {
    /// The products directory holds the test bundle and `echo` side by side: `swift test` builds every
    /// target, the executable included. Falls back to `.build/debug/echo` under the package root.
    static let path: String? = {
        var candidates: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 {
            let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // …/debug/uring-echoPackageTests.xctest (an executable on Linux), or a runner inside a bundle.
            var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
            for _ in 0..<3 {
                candidates.append(directory.appendingPathComponent("echo").path)
                directory = directory.deletingLastPathComponent()
            }
        }
        if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
            candidates.append(URL(fileURLWithPath: bundle.bundlePath).deletingLastPathComponent().appendingPathComponent("echo").path)
        }
        // #filePath is …/Tests/EchoServerTests/ServerProcess.swift.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/echo").path)
        return candidates.first { path in
            var info = stat()
            return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
        }
    }()

    static var exists: Bool { path != nil }
}

/// How a child process ended.
enum ExitStatus: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus status: Int32) {
        let signal = status & 0x7F
        self = signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
    }

    var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        }
    }
}

/// Reads one pipe until EOF on a thread of its own.
private final class PipeCollector: Sendable {
    private let data = Mutex<[UInt8]>([])
    private let finished = DispatchSemaphore(value: 0)

    init(fd: Int32) {
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                let n = SystemCall.outcome(retryingInterrupts: true) { read(fd, &chunk, chunk.count) }.value
                guard n > 0 else { break }
                data.withLock { $0.append(contentsOf: chunk[0..<n]) }
            }
            close(fd)
            finished.signal()
        }
        thread.start()
    }

    /// What was read so far, after waiting up to `timeout` seconds for EOF.
    func text(waitingUpTo timeout: Double) -> String {
        if finished.wait(timeout: .now() + timeout) == .success { finished.signal() }
        return String(decoding: data.withLock { $0 }, as: UTF8.self)
    }
}

/// A child process started with posix_spawn, stdout and stderr captured, stdin from /dev/null.
///
/// posix_spawn rather than Foundation's Process: Process lets the child inherit this process's
/// ignored SIGPIPE, which would hide a server that dies of SIGPIPE. Here SIGPIPE, SIGTERM and SIGINT
/// are reset to their defaults in the child and its signal mask is empty, as from a shell.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let arguments: [String]
    private let output: PipeCollector
    private let errors: PipeCollector
    private let lock = Mutex<ExitStatus?>(nil)
    private static let setpriv = "/usr/bin/setpriv"

    init(executable: String, arguments: [String]) throws {
        TestEnvironment.prepare()
        self.arguments = arguments
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        try SystemCall.run("pipe") { pipe(&outPipe) }
        let errPiped = SystemCall.outcome { pipe(&errPipe) }
        guard !errPiped.failed else {
            close(outPipe[0]); close(outPipe[1])
            throw SystemCall.failure("pipe", code: errPiped.error)
        }
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGCHLD, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        // Through setpriv --pdeathsig KILL where it exists (it execs in place: same PID): if this test
        // process dies (a backend crashing in-process, say), the server dies with it instead of
        // lingering on its port. The spawning thread is the test's own, alive as long as the child.
        var program = executable
        var words = [executable] + arguments
        if access(Self.setpriv, X_OK) == 0 {
            program = Self.setpriv
            words = [Self.setpriv, "--pdeathsig", "KILL", "--"] + words
        }
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var child = pid_t()
        let status = posix_spawn(&child, program, &actions, &attributes, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard status == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw SystemCall.failure("posix_spawn(\(executable))", code: status)
        }
        pid = child
        output = PipeCollector(fd: outPipe[0])
        errors = PipeCollector(fd: errPipe[0])
    }

    deinit {
        if lock.withLock({ $0 }) == nil { killAndReap() }
    }

    /// The exit status if the child has ended (reaps it), else nil.
    func exitStatus() -> ExitStatus? {
        lock.withLock { known in
            if let known { return known }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { known = ExitStatus(waitStatus: status) }
            return known
        }
    }

    var isRunning: Bool { exitStatus() == nil }

    /// Waits up to `timeout` seconds for the child to end.
    func waitForExit(timeout: Double) -> ExitStatus? {
        let deadline = monotonicNow() + timeout
        while true {
            if let status = exitStatus() { return status }
            if monotonicNow() >= deadline { return nil }
            usleep(2000)
        }
    }

    /// Sends `signal` to the child, by its PID.
    func send(signal: Int32) {
        if exitStatus() == nil { kill(pid, signal) }
    }

    /// SIGKILL by PID, then reap.
    func killAndReap() {
        if exitStatus() == nil {
            kill(pid, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// Everything the child wrote to stdout (waits briefly for EOF once it has ended).
    var standardOutput: String { output.text(waitingUpTo: isRunning ? 0 : 2) }
    /// Everything the child wrote to stderr.
    var standardError: String { errors.text(waitingUpTo: isRunning ? 0 : 2) }

    /// Runs `echo` with `arguments` to its end (at most `timeout` seconds, then SIGKILL).
    static func runEcho(_ arguments: [String], timeout: Double = 10) throws -> (status: ExitStatus, stdout: String, stderr: String) {
        guard let path = EchoBinary.path else { throw TestFailure("the echo executable was not built") }
        let child = try ChildProcess(executable: path, arguments: arguments)
        guard let status = child.waitForExit(timeout: timeout) else {
            child.killAndReap()
            throw TestFailure("echo \(arguments.joined(separator: " ")) did not exit within \(timeout) s; stderr: \(child.standardError)")
        }
        return (status, child.standardOutput, child.standardError)
    }
}

/// A running `echo` server in a child process on a free port.
final class ServerProcess: @unchecked Sendable {
    let child: ChildProcess
    let port: Int
    /// The server's `--stats-json` file, when started with `statistics: true` (see
    /// ``statistics(timeout:)``); removed when this object goes.
    let statsPath: String?

    /// Starts `echo` with `arguments` plus `--port` (a free one) and waits until it accepts connections.
    /// With `statistics`, the server also writes its counters to ``statsPath`` (`--stats-json`), and
    /// start-up waits for its first document too, so ``statistics(timeout:)`` can be called at once.
    init(arguments: [String], statistics: Bool = false, startupTimeout: Double = 10) throws {
        guard let path = EchoBinary.path else { throw TestFailure("the echo executable was not built") }
        port = try freeLoopbackPort()
        var extra = ["--host", "127.0.0.1", "--port", String(port)]
        if statistics {
            let file = NSTemporaryDirectory() + "echo-test-\(getpid())-\(port).json"
            unlink(file)
            statsPath = file
            extra += ["--stats-json", file]
        } else {
            statsPath = nil
        }
        child = try ChildProcess(executable: path, arguments: arguments + extra)
        let deadline = monotonicNow() + startupTimeout
        while true {
            if let status = child.exitStatus() {
                throw TestFailure("echo \(child.arguments.joined(separator: " ")) exited during start-up (\(status)); stderr: \(child.standardError)")
            }
            if statsPath.map({ access($0, F_OK) == 0 }) ?? true, let probe = try? TestClient(port: port, connectTimeout: 0.5) {
                probe.close()
                return
            }
            if monotonicNow() >= deadline {
                child.killAndReap()
                throw TestFailure("echo did not accept connections on port \(port)\(statsPath == nil ? "" : " (or wrote no --stats-json file)") within \(startupTimeout) s; stderr: \(child.standardError)")
            }
            usleep(20_000)
        }
    }

    /// Sends `signal` and waits up to `timeout` seconds for the exit.
    func stop(signal: Int32 = SIGTERM, timeout: Double = 5) -> ExitStatus? {
        child.send(signal: signal)
        return child.waitForExit(timeout: timeout)
    }

    deinit {
        child.killAndReap()
        if let statsPath { unlink(statsPath); unlink(statsPath + ".tmp") }
    }
}

/// Whether `text` shows a crash or a stack trace rather than an error message.
func looksLikeCrash(_ text: String) -> Bool {
    ["Fatal error", "Stack dump", "Backtrace", "backtrace", "Current stack trace", "💣", "Program crashed", "Segmentation fault", "#0 "]
        .contains { text.contains($0) }
}

/// The non-empty lines of `text`.
func nonEmptyLines(_ text: String) -> [Substring] {
    text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
}
