#if canImport(Glibc)
import Glibc
#endif
import Backend
import EchoSupport
import Testing

/// The top-level suite. Everything runs serially: the descriptor-leak test counts this process's
/// descriptors (so nothing else may open any meanwhile), the 1000- and 10,000-connection cases must not
/// fight over descriptors and the two cores, and the few bounds tighter than a hang's (a prompt stop,
/// the slowest round trip; see ``measureTwice(within:_:sourceLocation:_:)``) want a quiet machine.
@Suite("uring-echo", .serialized)
struct EchoSuite {}

/// Starts `backend`, runs `body`, stops the server (bounded in time) and returns its final statistics.
/// The server is stopped even when `body` throws.
@discardableResult
func withServer(_ backend: BackendUnderTest, _ body: (EchoServer) throws -> Void) throws -> ServerStatistics {
    let server = try backend.start()
    do {
        try body(server)
    } catch {
        _ = try? stopServer(server, timeout: 5)
        throw error
    }
    return try stopServer(server)
}

/// One client: connect, echo `size` seeded bytes, close. Returns the number of bytes echoed.
@discardableResult
func echoOnce(port: Int, size: Int = 1000, seed: UInt64 = 1) throws -> Int {
    let client = try TestClient(port: port)
    defer { client.close() }
    let data = randomBytes(size, seed: seed)
    let echoed = try client.echoConcurrently(data)
    if let problem = describeMismatch(expected: data, received: echoed) { throw TestFailure("echo of \(size) bytes: \(problem)") }
    return size
}

/// `count` clients that each reset their connection (SO_LINGER {1,0} + close) while data is in flight,
/// from `threads` threads. Three kinds, in turn: reset right after sending 64 KiB (the server is still
/// reading), reset once the echo has started to come back (the server is writing, the client's
/// receive queue holds unread bytes), and reset after a completed 8 KiB round trip plus 64 KiB more.
/// Returns how many clients were reset.
func resetClientsMidStream(port: Int, count: Int, threads: Int, timeout: Double = 45) throws -> Int {
    let perThread = (count + threads - 1) / threads
    let workers = (0..<threads).map { thread in
        Background("resetter-\(thread)") { () throws -> Int in
            var done = 0
            for index in (thread * perThread)..<min(count, (thread + 1) * perThread) {
                let client = try TestClient(port: port)
                let burst = randomBytes(64 * 1024, seed: UInt64(index))
                switch index % 3 {
                case 0:
                    try client.sendAll(burst)
                case 1:
                    try client.sendAll(burst)
                    _ = try client.receiveExactly(1)
                default:
                    let first = randomBytes(8 * 1024, seed: UInt64(index) + 7)
                    try client.sendAll(first)
                    let echoed = try client.receiveExactly(first.count)
                    if let problem = describeMismatch(expected: first, received: echoed) {
                        throw TestFailure("client \(index) before its reset: \(problem)")
                    }
                    try client.sendAll(burst)
                }
                client.resetAndClose()
                done += 1
            }
            return done
        }
    }
    var total = 0
    var failures: [String] = []
    for worker in workers {
        do { total += try worker.wait(timeout: timeout) } catch { failures.append("\(worker.name): \(error)") }
    }
    if !failures.isEmpty { throw TestFailure(failures.joined(separator: "; ")) }
    return total
}

/// Runs `count` connect/close cycles from `threads` threads; every 100th connection echoes one
/// byte first, to show the server is still answering. Returns the number of cycles.
func connectCloseCycles(port: Int, count: Int, threads: Int) throws -> Int {
    let perThread = (count + threads - 1) / threads
    let workers = (0..<threads).map { thread in
        Background("cycler-\(thread)") { () throws -> Int in
            var done = 0
            for index in (thread * perThread)..<min(count, (thread + 1) * perThread) {
                let client = try TestClient(port: port)
                if index % 100 == 0 {
                    try client.sendAll([UInt8(index & 0xFF)])
                    let echoed = try client.receiveExactly(1)
                    if echoed != [UInt8(index & 0xFF)] { throw TestFailure("cycle \(index): echoed \(echoed)") }
                }
                client.close()
                done += 1
            }
            return done
        }
    }
    var total = 0
    for worker in workers { total += try worker.wait(timeout: 45) }
    return total
}

/// The server's counters as one readable line, for failure messages.
func describe(_ s: ServerStatistics) -> String {
    ServerStatistics.Counter.allCases.filter { $0.group != .syscalls }.map { "\($0.key) \(s[$0])" }.joined(separator: ", ")
}

/// A non-blocking client that streams a ``PatternStream`` and verifies the echo, one direction at a
/// time or both at once: for back-pressure tests, where the client stops reading on purpose.
final class StreamingClient {
    let client: TestClient
    let stream: PatternStream
    let total: Int
    private(set) var written = 0
    private(set) var received = 0
    private let slice = 256 * 1024
    private var buffer: [UInt8]

    /// Connects; pins the client's socket buffers to `socketBuffer` bytes so the kernel's share of
    /// what is in flight stays small and known.
    init(port: Int, total: Int, seed: UInt64, socketBuffer: Int32 = 128 * 1024) throws {
        client = try TestClient(port: port)
        client.setBufferSizes(socketBuffer)
        client.setNonBlocking()
        stream = PatternStream(seed: seed)
        self.total = total
        buffer = [UInt8](repeating: 0, count: slice)
    }

    /// Writes without reading until no byte has been accepted for `stallSeconds` (true), or all
    /// `total` bytes were accepted, or `timeout` passed (false).
    func writeUntilStalled(stallSeconds: Double = 0.5, timeout: Double = 20) throws -> Bool {
        var lastProgress = monotonicNow()
        let deadline = monotonicNow() + timeout
        while written < total && monotonicNow() < deadline {
            if try writeSome() > 0 { lastProgress = monotonicNow(); continue }
            if monotonicNow() - lastProgress > stallSeconds { return true }
            var entry = pollfd(fd: client.fileDescriptor, events: Int16(POLLOUT), revents: 0)
            _ = poll(&entry, 1, 50)
        }
        return false
    }

    /// Reads (and verifies) everything back while writing the rest, until `total` bytes came back.
    func finish(timeout: Double = 30) throws {
        let fd = client.fileDescriptor
        let deadline = monotonicNow() + timeout
        while received < total && monotonicNow() < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN) | (written < total ? Int16(POLLOUT) : 0), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            if written < total && entry.revents & Int16(POLLOUT) != 0 { _ = try writeSome() }
            if entry.revents & (Int16(POLLIN) | Int16(POLLERR) | Int16(POLLHUP)) != 0 { try readSome() }
        }
        if received < total {
            throw TestFailure("timed out: sent \(written), received \(received) of \(total) bytes")
        }
    }

    private func writeSome() throws -> Int {
        let length = min(slice, total - written)
        let sending = SystemCall.outcome(retryingInterrupts: true) {
            stream.withSlice(at: written, length: length) {
                send(client.fileDescriptor, $0.baseAddress!, length, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
        }
        if sending.value > 0 { written += sending.value; return sending.value }
        guard sending.error == EAGAIN else {
            throw TestFailure("send failed after \(written) bytes: \(describeErrno(sending.error))")
        }
        return 0
    }

    private func readSome() throws {
        let length = min(slice, total - received)
        let receiving = SystemCall.outcome(retryingInterrupts: true) { recv(client.fileDescriptor, &buffer, length, Int32(MSG_DONTWAIT)) }
        let n = receiving.value
        if n == 0 { throw TestFailure("EOF after \(received) of \(total) echoed bytes (\(written) sent)") }
        if receiving.failed {
            guard receiving.error == EAGAIN else {
                throw TestFailure("recv failed after \(received) of \(total) bytes: \(describeErrno(receiving.error))")
            }
            return
        }
        let good = buffer.withUnsafeBytes { stream.matches(UnsafeRawBufferPointer(rebasing: $0[0..<n]), at: received) }
        if !good { throw TestFailure("echoed bytes at offset \(received)..<\(received + n) differ from what was sent") }
        received += n
    }
}
