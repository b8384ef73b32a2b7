#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization
import Testing
import Backend
import EchoSupport

// Shared plumbing for the tests: errors, clocks, seeded random bytes, a thread with a timed join,
// and what /proc says about this process (descriptors, sockets, memory).

/// A failure with a message that says what went wrong and where.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Process-wide set-up, done once: ignore SIGPIPE so a write to a reset socket returns EPIPE instead of
/// killing the test process.
enum TestEnvironment {
    private static let prepared: Bool = {
        _ = signal(SIGPIPE, SIG_IGN)
        return true
    }()

    static func prepare() { _ = prepared }
}

/// An error number as failure messages give it: `strerror`'s text and the number, as
/// ``EchoError/system(_:errno:)`` ends its description.
func describeErrno(_ code: Int32) -> String {
    "\(EchoError.message(for: code)) (errno \(code))"
}

// MARK: - Time

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func sleep(seconds: Double) {
    usleep(UInt32(max(0, seconds) * 1_000_000))
}

/// A timing check with a bound tighter than a hang's, made robust on a shared 2-core machine where
/// any process can stall for a second: `measure` runs (it sets up its scenario afresh and returns
/// the seconds it measured); when that exceeds `bound`, it runs once more; an issue is recorded only
/// when both measurements exceed it. Something slow by design misses both times, a hiccup once.
/// Returns the measurements.
@discardableResult
func measureTwice(within bound: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                  _ measure: () throws -> Double) rethrows -> [Double] {
    var seconds: [Double] = []
    for _ in 1...2 {
        seconds.append(try measure())
        if seconds.last! <= bound { return seconds }
    }
    Issue.record("\(what) took over \(bound) s twice: \(seconds.map { "\($0) s" }.joined(separator: ", "))",
                 sourceLocation: sourceLocation)
    return seconds
}

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass; returns whether it held.
@discardableResult
func eventually(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNow() + timeout
    while true {
        if condition() { return true }
        if monotonicNow() >= deadline { return false }
        sleep(seconds: 0.01)
    }
}

/// Samples `probe` every 10 ms until `condition` holds for the sample or `timeout` seconds pass;
/// returns whether it held and the last sample (for the failure message).
func waitFor<T>(timeout: Double, _ probe: () -> T, until condition: (T) -> Bool) -> (ok: Bool, last: T) {
    let deadline = monotonicNow() + timeout
    while true {
        let sample = probe()
        if condition(sample) { return (true, sample) }
        if monotonicNow() >= deadline { return (false, sample) }
        sleep(seconds: 0.01)
    }
}

// MARK: - Threads

/// Runs `body` on its own thread; ``wait(timeout:)`` joins it with a bound, so a hung server or client
/// fails the test instead of hanging the run.
final class Background<T: Sendable>: Sendable {
    private let result = Mutex<Result<T, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)
    let name: String

    init(_ name: String, _ body: @escaping @Sendable () throws -> T) {
        self.name = name
        let thread = Thread { [self] in
            let outcome = Result { try body() }
            result.withLock { $0 = outcome }
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// The body's result, or a ``TestFailure`` when it has not finished within `timeout` seconds
    /// (the thread is then left behind).
    func wait(timeout: Double) throws -> T {
        guard done.wait(timeout: .now() + timeout) == .success else {
            throw TestFailure("\(name) did not finish within \(timeout) s")
        }
        done.signal() // let a second wait return at once
        return try result.withLock { $0! }.get()
    }
}

/// Stops `server` and waits for its loop, at most `timeout` seconds; returns the final statistics.
@discardableResult
func stopServer(_ server: EchoServer, timeout: Double = 10) throws -> ServerStatistics {
    let stopping = Background("shutdown") { () throws -> ServerStatistics in try server.shutdown() }
    do {
        return try stopping.wait(timeout: timeout)
    } catch let failure as TestFailure {
        throw TestFailure("server.shutdown() hung: \(failure)")
    }
}

// MARK: - Bytes

/// SplitMix64: a small seeded generator, so every run sends the same "random" bytes.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` pseudo-random bytes from `generator` (eight at a time: debug builds are slow per byte).
func randomBytes(_ count: Int, using generator: inout SeededGenerator) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: (count + 7) & ~7)
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for index in words.indices { words[index] = generator.next() }
    }
    bytes.removeLast(bytes.count - count)
    return bytes
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    return randomBytes(count, using: &generator)
}

/// The offset of the first byte where `a` and `b` differ, or where the shorter one ends; nil when equal.
func firstMismatch(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int? {
    let common = min(a.count, b.count)
    let block = 4096
    var offset = 0
    while offset < common {
        let length = min(block, common - offset)
        if memcmp(a.baseAddress! + offset, b.baseAddress! + offset, length) != 0 {
            for index in offset..<(offset + length) where a[index] != b[index] { return index }
        }
        offset += length
    }
    return a.count == b.count ? nil : common
}

func firstMismatch(_ a: [UInt8], _ b: [UInt8]) -> Int? {
    a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in firstMismatch(pa, pb) } }
}

/// Explains how `received` differs from `expected`, or returns nil when they are equal.
func describeMismatch(expected: [UInt8], received: [UInt8]) -> String? {
    guard let offset = firstMismatch(expected, received) else { return nil }
    if offset >= received.count {
        return "received \(received.count) of \(expected.count) bytes"
    }
    if offset >= expected.count {
        return "received \(received.count) bytes, \(received.count - expected.count) more than the \(expected.count) sent"
    }
    return "first wrong byte at offset \(offset) of \(expected.count): expected \(expected[offset]), got \(received[offset])"
}

/// An endless byte stream that repeats a random block whose length is a prime, so a dropped, repeated
/// or shifted slice shows up; any slice up to `maxSlice` bytes is read straight from one buffer.
struct PatternStream: Sendable {
    let period: Int
    let maxSlice: Int
    private let bytes: [UInt8]

    init(period: Int = 1_048_573, maxSlice: Int = 256 * 1024, seed: UInt64) {
        self.period = period
        self.maxSlice = maxSlice
        let block = randomBytes(period, seed: seed)
        bytes = block + block.prefix(maxSlice)
    }

    /// Calls `body` with the stream's bytes at `offset ..< offset + length` (length ≤ maxSlice).
    func withSlice<R>(at offset: Int, length: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(length <= maxSlice)
        let start = offset % period
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }
    }

    /// Whether `received` equals the stream's bytes at `offset`.
    func matches(_ received: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        while done < received.count {
            let length = min(maxSlice, received.count - done)
            let equal = withSlice(at: offset + done, length: length) { expected in
                memcmp(expected.baseAddress!, received.baseAddress! + done, length) == 0
            }
            if !equal { return false }
            done += length
        }
        return true
    }
}

// MARK: - /proc

/// The whole content of a (proc) file, read until EOF.
func readWholeFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = SystemCall.outcome(retryingInterrupts: true) { read(fd, &chunk, chunk.count) }.value
        if n < 0 { return nil }
        if n == 0 { break }
        data.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: data, as: UTF8.self)
}

/// The descriptor numbers open in this process (without the one used to list them).
func openDescriptors() -> [Int32] {
    guard let dir = opendir("/proc/self/fd") else { return [] }
    let own = dirfd(dir)
    var result: [Int32] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: &entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if let number = Int32(name), number != own { result.append(number) }
    }
    closedir(dir)
    return result
}

/// How many descriptors this process has open.
func openDescriptorCount() -> Int { openDescriptors().count }

/// What `/proc/self/fd/N` points at ("socket:[1234]", "anon_inode:[eventfd]", a path…).
func descriptorTarget(_ fd: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    guard n > 0 else { return "?" }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The local and remote port of `fd`, a TCP socket of this process (IPv4 or IPv6), from
/// getsockname and getpeername; the remote port is nil while it is not connected (listening, or
/// after a reset). Nil when `fd` is no TCP socket.
///
/// Asked of the socket itself, not looked up in /proc/net/tcp: that table lists every TCP socket of
/// the machine, tens of thousands in TIME_WAIT after the connection tests, and took most of a second
/// per read; this takes microseconds.
func tcpPorts(_ fd: Int32) -> (local: Int, remote: Int?)? {
    var protocolNumber: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocolNumber, &length) == 0,
          protocolNumber == Int32(IPPROTO_TCP) else { return nil }
    func port(_ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> Int? {
        var storage = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &size) }
        }
        guard status == 0 else { return nil }
        let family = Int32(storage.ss_family)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        // sin_port and sin6_port are both the two bytes after the family, in network order.
        return withUnsafeBytes(of: &storage) { Int($0[2]) << 8 | Int($0[3]) }
    }
    guard let local = port(getsockname) else { return nil }
    return (local, port(getpeername))
}

/// The TCP state of socket `fd` (TCP_INFO), by the names of /proc/net/tcp ("ESTABLISHED", "LISTEN"…).
func tcpState(_ fd: Int32) -> String {
    // tcpi_state is the first byte of struct tcp_info; getsockopt copies no more than asked for.
    var info = [UInt8](repeating: 0, count: 8)
    var length = socklen_t(info.count)
    guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0, length > 0 else { return "?" }
    return tcpStateName(info[0])
}

/// Descriptors of this process that are the server's side of a connection on `port` (local port
/// `port`, not listening), with their TCP state: connections the server still holds open.
func serverHeldConnections(port: Int) -> [(fd: Int32, state: String)] {
    var held: [(fd: Int32, state: String)] = []
    for fd in openDescriptors() {
        guard let ports = tcpPorts(fd), ports.local == port else { continue }
        let state = tcpState(fd)
        if state != "LISTEN" { held.append((fd, state)) }
    }
    return held
}

/// The name of TCP state `state` (the kernel's numbering, as in /proc/net/tcp).
func tcpStateName(_ state: UInt8) -> String {
    switch state {
    case 1: return "ESTABLISHED"
    case 2: return "SYN_SENT"
    case 3: return "SYN_RECV"
    case 4: return "FIN_WAIT1"
    case 5: return "FIN_WAIT2"
    case 6: return "TIME_WAIT"
    case 7: return "CLOSE"
    case 8: return "CLOSE_WAIT"
    case 9: return "LAST_ACK"
    case 10: return "LISTEN"
    case 11: return "CLOSING"
    default: return "state \(state)"
    }
}

/// This process's descriptors that a server on `port` could be responsible for: every descriptor
/// that is not a socket, and the TCP sockets with `port` at either end. Sockets of other tests
/// (another test target's suites may run at the same time) are left out, so they cannot hide or
/// fake a leak.
func descriptorsRelevant(toPort port: Int) -> [Int32: String] {
    var result: [Int32: String] = [:]
    for fd in openDescriptors() {
        let target = descriptorTarget(fd)
        if target.hasPrefix("socket:[") {
            guard let ports = tcpPorts(fd), ports.local == port || ports.remote == port else { continue }
        }
        result[fd] = target
    }
    return result
}

/// `descriptors` by kind ("socket" 3, "anon_inode:[eventfd]" 1, …), for messages.
func summarize(_ descriptors: [Int32: String]) -> String {
    var kinds: [String: Int] = [:]
    for (_, target) in descriptors {
        let kind = target.hasPrefix("socket:") ? "socket" : target.hasPrefix("pipe:") ? "pipe" : target
        kinds[kind, default: 0] += 1
    }
    return kinds.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", ")
}

/// This process's resident set size in bytes (/proc/self/statm).
func residentBytes() -> Int {
    guard let text = readWholeFile("/proc/self/statm") else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// An integer sysctl's fields ("net.ipv4.tcp_rmem" → [4096, 131072, 6291456]).
func sysctlIntegers(_ name: String) -> [Int] {
    let path = "/proc/sys/" + name.replacingOccurrences(of: ".", with: "/")
    guard let text = readWholeFile(path) else { return [] }
    return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
}

let MiB = 1 << 20

/// The most the kernel can buffer one way on a loopback TCP connection whose peer has stopped
/// reading: the sender's send buffer and the receiver's receive buffer, each autotuned up to its
/// maximum (`tcp_wmem`, `tcp_rmem`; 4 and 32 MiB on this project's machines). A client that writes
/// more than this to a server that stops reading must stall.
func kernelBufferingMaximum() -> Int {
    (sysctlIntegers("net.ipv4.tcp_wmem").last ?? 4 * MiB) + (sysctlIntegers("net.ipv4.tcp_rmem").last ?? 6 * MiB)
}
