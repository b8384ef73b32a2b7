import Glibc
import Synchronization
// liburing's header includes <sys/socket.h> under its own _XOPEN_SOURCE, so once a test file that
// imports CLibUring has been read, SOCK_STREAM and SOCK_CLOEXEC resolve only in files that import
// it too (SystemCallTests sorts before this file).
import CLibUring
import EchoSupport

/// A blocking TCP client on 127.0.0.1 whose every call is bounded in time (SO_SNDTIMEO/SO_RCVTIMEO),
/// so a server that stops answering fails the test instead of hanging it.
///
/// Sendable: a writer thread may send while another thread receives on the same socket.
final class TestClient: Sendable {
    let fileDescriptor: Int32
    let port: Int
    /// The most one send or receive waits for progress.
    let ioTimeout: Double
    private let closed = Atomic<Bool>(false)

    /// Connects to 127.0.0.1:`port`, waiting at most `connectTimeout` seconds; every later send or
    /// receive waits at most `ioTimeout` seconds.
    init(port: Int, connectTimeout: Double = 5, ioTimeout: Double = 10) throws {
        TestEnvironment.prepare()
        self.port = port
        self.ioTimeout = ioTimeout
        let fd = try SystemCall.run("socket()") { socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        fileDescriptor = fd
        do {
            try Self.setTimeout(fd, SO_SNDTIMEO, connectTimeout)
            let code = connectLoopback(fd, port: port, timeout: connectTimeout)
            if code != 0 {
                if code == EINPROGRESS || code == EAGAIN {
                    throw TestFailure("connect to 127.0.0.1:\(port) timed out after \(connectTimeout) s")
                }
                throw TestFailure("connect to 127.0.0.1:\(port) failed: \(describeErrno(code))")
            }
            try Self.setTimeout(fd, SO_SNDTIMEO, ioTimeout)
            try Self.setTimeout(fd, SO_RCVTIMEO, ioTimeout)
        } catch {
            Glibc.close(fd)
            closed.store(true, ordering: .relaxed)
            throw error
        }
    }

    deinit { close() }

    private static func setTimeout(_ fd: Int32, _ option: Int32, _ seconds: Double) throws {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        try SystemCall.run("setsockopt(timeout)") { setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size)) }
    }

    /// Sends every byte of `bytes` (MSG_NOSIGNAL), or throws saying how far it got.
    func sendAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        var lastProgress = monotonicNow()
        while offset < bytes.count {
            let sending = SystemCall.outcome { send(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if sending.value > 0 { offset += sending.value; lastProgress = monotonicNow(); continue }
            let code = sending.error
            // EINTR restarts the wait; bound the restarts by the same timeout.
            if code == EINTR && monotonicNow() - lastProgress < ioTimeout { continue }
            if code == EAGAIN {
                throw TestFailure("send timed out with \(offset) of \(bytes.count) bytes sent (server not reading?)")
            }
            throw TestFailure("send failed after \(offset) of \(bytes.count) bytes: \(describeErrno(code))")
        }
    }

    func sendAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sendAll($0) }
    }

    /// Receives exactly `count` bytes, or throws on EOF, error or timeout, saying how many arrived.
    /// With `readSizes`, each `recv` asks for the next of those sizes in turn (at most what is left).
    func receiveExactly(_ count: Int, readSizes: [Int] = []) throws -> [UInt8] {
        var received = 0
        var reads = 0
        var failure: TestFailure?
        var lastProgress = monotonicNow()
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            while received < count {
                let want = readSizes.isEmpty ? count - received : min(readSizes[reads % readSizes.count], count - received)
                let receiving = SystemCall.outcome { recv(fileDescriptor, buffer.baseAddress! + received, want, 0) }
                if receiving.value > 0 { received += receiving.value; reads += 1; lastProgress = monotonicNow(); continue }
                if receiving.value == 0 {
                    failure = TestFailure("connection closed by the server after \(received) of \(count) bytes")
                    break
                }
                let code = receiving.error
                if code == EINTR && monotonicNow() - lastProgress < ioTimeout { continue }
                failure = TestFailure(code == EAGAIN
                    ? "timed out waiting for the echo: \(received) of \(count) bytes arrived"
                    : "recv failed after \(received) of \(count) bytes: \(describeErrno(code))")
                break
            }
            initialized = received
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads until EOF (at most `limit` bytes); throws on timeout or error. Returns what arrived.
    func receiveUntilEOF(limit: Int) throws -> [UInt8] {
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var lastProgress = monotonicNow()
        while true {
            let receiving = SystemCall.outcome { recv(fileDescriptor, &chunk, chunk.count, 0) }
            if receiving.value > 0 {
                lastProgress = monotonicNow()
                data.append(contentsOf: chunk[0..<receiving.value])
                if data.count > limit { throw TestFailure("received \(data.count) bytes, more than the \(limit) expected") }
                continue
            }
            if receiving.value == 0 { return data }
            let code = receiving.error
            if code == EINTR && monotonicNow() - lastProgress < ioTimeout { continue }
            throw TestFailure(code == EAGAIN
                ? "timed out waiting for EOF after \(data.count) bytes"
                : "recv failed after \(data.count) bytes: \(describeErrno(code))")
        }
    }

    /// Waits up to `timeout` seconds for the socket to become readable; nil when nothing arrived, else
    /// what one recv returned (0 = EOF, -errno for an error, else a byte count).
    func readableWithin(_ timeout: Double) -> Int? {
        var entry = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, Int32(timeout * 1000))
        guard ready > 0 else { return nil }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let receiving = SystemCall.outcome { recv(fileDescriptor, &chunk, chunk.count, Int32(MSG_DONTWAIT)) }
        return receiving.failed ? -Int(receiving.error) : receiving.value
    }

    /// shutdown(SHUT_WR): the server sees EOF, the client can still read.
    func shutdownWrite() throws {
        try SystemCall.run("shutdown(SHUT_WR)") { shutdown(fileDescriptor, Int32(SHUT_WR)) }
    }

    /// Sets O_NONBLOCK.
    func setNonBlocking() {
        let flags = fcntl(fileDescriptor, F_GETFL)
        _ = fcntl(fileDescriptor, F_SETFL, flags | O_NONBLOCK)
    }

    /// Sets SO_SNDBUF and SO_RCVBUF (the kernel doubles them), which also stops autotuning them.
    func setBufferSizes(_ bytes: Int32) {
        var value = bytes
        _ = setsockopt(fileDescriptor, SOL_SOCKET, SO_SNDBUF, &value, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Closes with SO_LINGER {1, 0}: the kernel discards what is queued and sends RST.
    func resetAndClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fileDescriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    func close() {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) { _ = Glibc.close(fileDescriptor) }
    }

    /// Sends `data` from a writer thread (in slices of `sliceSizes`, cycling) while this thread reads the
    /// echo; returns what came back once `data.count` bytes arrived. Then optionally half-closes.
    /// Writing and reading at once is required: a client that writes everything first deadlocks
    /// against any echo server once both directions' socket buffers are full.
    func echoConcurrently(_ data: [UInt8], sliceSizes: [Int] = [65536], timeout: Double = 30) throws -> [UInt8] {
        let writer = Background("writer") { [self] in
            try data.withUnsafeBytes { raw in
                var offset = 0
                var index = 0
                while offset < raw.count {
                    let length = min(sliceSizes[index % sliceSizes.count], raw.count - offset)
                    try sendAll(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
                    offset += length
                    index += 1
                }
            }
        }
        let received: [UInt8]
        do {
            received = try receiveExactly(data.count)
        } catch {
            // The writer's failure, if it has one, is usually the cause: report both.
            let writerState: String
            do { try writer.wait(timeout: 1); writerState = "the writer had sent everything" } catch { writerState = "writer: \(error)" }
            throw TestFailure("\(error); \(writerState)")
        }
        try writer.wait(timeout: timeout)
        return received
    }
}

/// sockaddr_in for 127.0.0.1:`port`.
func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
    return address
}

/// A port that was free a moment ago: bind 127.0.0.1:0, read the port, close.
func freeLoopbackPort() throws -> Int {
    let fd = try SystemCall.run("socket()") { socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    defer { close(fd) }
    var address = loopbackAddress(port: 0)
    try SystemCall.run("bind(127.0.0.1:0)") {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
    return try boundPort(fd)
}

/// A socket listening on 127.0.0.1 on a kernel-chosen port (to occupy a port). Close it with close(2).
func listeningSocketOnFreePort() throws -> (fd: Int32, port: Int) {
    let fd = try SystemCall.run("socket()") { socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    var address = loopbackAddress(port: 0)
    do {
        try SystemCall.run("bind(127.0.0.1:0)") {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        try SystemCall.run("listen") { listen(fd, 16) }
    } catch {
        close(fd)
        throw error
    }
    return (fd, try boundPort(fd))
}

func boundPort(_ fd: Int32) throws -> Int {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    try SystemCall.run("getsockname") {
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Connects socket `fd` to 127.0.0.1:`port`: 0, or the error number. A blocking connect that a
/// signal interrupts (EINTR) goes on in the kernel, so it is waited for (at most `timeout` seconds)
/// and its result read from `SO_ERROR`, never started again.
func connectLoopback(_ fd: Int32, port: Int, timeout: Double) -> Int32 {
    var address = loopbackAddress(port: port)
    let connecting = SystemCall.outcome {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
    guard connecting.failed else { return 0 }
    guard connecting.error == EINTR else { return connecting.error }
    let deadline = monotonicNow() + timeout
    while true {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let left = Int32(max(0, (deadline - monotonicNow()) * 1000))
        let ready = SystemCall.outcome { poll(&entry, 1, left) }
        if ready.failed && ready.error == EINTR { continue }
        if ready.failed { return ready.error }
        if ready.value == 0 { return EINPROGRESS }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        let asked = SystemCall.outcome { getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) }
        return asked.failed ? asked.error : error
    }
}
