
#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

/// A helper process holding a range of the `--idle` connections: the `echo-bench` executable run
/// again as `echo-bench --idle-helper`, when they need more descriptors than one process has.
///
/// The protocol is two lines on the helper's standard output and the end of its standard input:
/// 1. the helper connects its range and writes `ready ESTABLISHED CONNECT_ERRORS`;
/// 2. it holds them until its standard input ends (``finish()`` closes it; so does the parent's
///    death), checks them (see ``ClientLoop/checkIdle()``) and writes `done MISMATCH RESET EOF`.
final class IdleHelper {
    static let readyWord = "ready"
    static let doneWord = "done"

    let pid: pid_t
    /// The write end of the helper's standard input; -1 once closed.
    private var input: Int32
    /// The read end of its standard output.
    private let output: Int32
    private var exited = false

    /// The arguments that make `echo-bench` a helper for idle connections `range`.
    static func arguments(_ configuration: BenchmarkConfiguration, range: Range<Int>, perSource: Int) -> [String] {
        ["--idle-helper", "--host", configuration.host, "--port", String(configuration.port),
         "--idle", String(range.count), "--idle-first", String(range.lowerBound),
         "--connect-timeout", String(configuration.connectTimeout)]
            + (perSource > 0 ? ["--idle-per-source", String(perSource)] : [])
    }

    /// Starts `executable` as the helper for idle connections `range`.
    init(executable: String, arguments: [String]) throws(BenchmarkError) {
        var toChild: [Int32] = [-1, -1]
        var fromChild: [Int32] = [-1, -1]
        let toOpened = SystemCall.outcome { pipe(&toChild) }
        guard !toOpened.failed else { throw .system(SystemCall.failure("pipe", code: toOpened.error)) }
        let fromOpened = SystemCall.outcome { pipe(&fromChild) }
        guard !fromOpened.failed else {
            close(toChild[0]); close(toChild[1])
            throw .system(SystemCall.failure("pipe", code: fromOpened.error))
        }
        for descriptor in toChild + fromChild { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        let words = [executable] + arguments
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child = pid_t()
        let status = posix_spawn(&child, executable, &actions, nil, argv, environ)
        close(toChild[0])
        close(fromChild[1])
        guard status == 0 else {
            close(toChild[1]); close(fromChild[0])
            throw .system(.system("posix_spawn \(executable)", errno: status))
        }
        pid = child
        input = toChild[1]
        output = fromChild[0]
    }

    deinit {
        if input >= 0 { close(input) }
        close(output)
        if !exited {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = SystemCall.outcome(retryingInterrupts: true) { waitpid(pid, &status, 0) }
        }
    }

    /// Waits for the helper's `ready` line: the connections it established and the connects that
    /// failed, or nil when it ended without one.
    func waitReady() -> (established: Int, connectErrors: UInt64)? {
        guard let words = readLine(), words.count == 3, words[0] == Self.readyWord,
              let established = Int(words[1]), let errors = UInt64(words[2]) else { return nil }
        return (established, errors)
    }

    /// Tells the helper to finish, and returns what it found on its connections (nil when it
    /// ended without saying).
    func finish() -> ErrorCounts? {
        if input >= 0 {
            close(input)
            input = -1
        }
        let words = readLine()
        var status: Int32 = 0
        _ = SystemCall.outcome(retryingInterrupts: true) { waitpid(pid, &status, 0) }
        exited = true
        guard let words, words.count == 4, words[0] == Self.doneWord,
              let mismatch = UInt64(words[1]), let reset = UInt64(words[2]), let eof = UInt64(words[3]) else { return nil }
        var errors = ErrorCounts()
        errors.mismatch = mismatch
        errors.reset = reset
        errors.eof = eof
        return errors
    }

    /// The next line of the helper's output, split into words; nil at its end.
    private func readLine() -> [Substring]? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = SystemCall.outcome(retryingInterrupts: true) { read(output, &byte, 1) }.value
            guard count == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
            if bytes.count > 4096 { return nil }
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: " ")
    }
}
