#if canImport(Glibc)
import Glibc
#endif
import EchoSupport

/// What a ``ManyConnections`` run saw.
struct ManyConnectionsOutcome: CustomStringConvertible {
    var requested = 0
    /// Connections established (all held open at once before any byte is sent).
    var connected = 0
    /// Connections whose echo came back complete and byte-exact.
    var echoed = 0
    /// connect() calls made, retries included.
    var connectAttempts = 0
    /// Most connections open at the same time.
    var peakOpen = 0
    var failureCount = 0
    /// The first failures, each with the connection's index.
    var failures: [String] = []
    var connectSeconds = 0.0
    var echoSeconds = 0.0

    mutating func fail(_ index: Int, _ message: String) {
        failureCount += 1
        if failures.count < 10 { failures.append("connection \(index): \(message)") }
    }

    var description: String {
        var text = "\(echoed)/\(requested) echoed, \(connected) connected (\(connectAttempts) connect attempts, "
            + "peak \(peakOpen) open), connect phase \(String(format1: connectSeconds)) s, echo phase \(String(format1: echoSeconds)) s"
        if failureCount > 0 { text += "; \(failureCount) failures, first: " + failures.joined(separator: "; ") }
        return text
    }
}

extension String {
    init(format1 value: Double) { self = String(Double(Int(value * 10)) / 10) }
}

/// Drives many client connections from one thread with non-blocking sockets and poll(2).
enum ManyConnections {
    /// Opens `count` connections to 127.0.0.1:`port`, with at most `window` connects in flight
    /// (so the listen backlog is never flooded); holds them all open; then every connection sends its
    /// own `payload(index)` and reads it back, all at once; every byte is compared. Closes them all.
    ///
    /// Slow connects (a SYN dropped by a full accept queue is retried by the kernel after 1 s, 3 s…) are
    /// tolerated until `timeout` seconds have passed in all. Connects that fail with a transient error
    /// are retried up to 3 times. With `stallTimeout`, the echo phase is bounded by a stall instead:
    /// it fails once no byte has moved for that long, however long it takes in all (a slow machine
    /// is no failure; the caller's time limit catches a crawl).
    static func run(port: Int, count: Int, window: Int = 128, timeout: Double, stallTimeout: Double? = nil,
                    payload: (Int) -> [UInt8]) -> ManyConnectionsOutcome {
        TestEnvironment.prepare()
        var outcome = ManyConnectionsOutcome()
        outcome.requested = count
        let deadline = monotonicNow() + timeout
        var fds = [Int32](repeating: -1, count: count)
        defer { for fd in fds where fd >= 0 { close(fd) } }

        // Phase 1: connect, gradually.
        let connectStart = monotonicNow()
        var attempts = [Int](repeating: 0, count: count)
        var queue = Array((0..<count).reversed()) // popLast gives 0, 1, 2…
        var pending: [Int] = []
        var open = 0
        func startConnect(_ index: Int) {
            attempts[index] += 1
            outcome.connectAttempts += 1
            let opened = SystemCall.outcome {
                socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
            guard !opened.failed else { outcome.fail(index, SystemCall.failure("socket()", code: opened.error).description); return }
            let fd = opened.value
            fds[index] = fd
            open += 1
            outcome.peakOpen = max(outcome.peakOpen, open)
            var address = loopbackAddress(port: port)
            let connecting = SystemCall.outcome {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            if !connecting.failed { outcome.connected += 1; return }
            if connecting.error == EINPROGRESS { pending.append(index); return }
            connectFailed(index, connecting.error)
        }
        func connectFailed(_ index: Int, _ code: Int32) {
            close(fds[index])
            fds[index] = -1
            open -= 1
            let transient = code == EAGAIN || code == ECONNREFUSED || code == ETIMEDOUT || code == EADDRNOTAVAIL || code == ECONNRESET
            if transient && attempts[index] < 4 {
                queue.append(index)
            } else {
                outcome.fail(index, "connect failed after \(attempts[index]) attempts: \(describeErrno(code))")
            }
        }
        var entries: [pollfd] = []
        while (!queue.isEmpty || !pending.isEmpty) && monotonicNow() < deadline {
            while pending.count < window, let index = queue.popLast() { startConnect(index) }
            if pending.isEmpty { continue }
            entries.removeAll(keepingCapacity: true)
            for index in pending { entries.append(pollfd(fd: fds[index], events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&entries, nfds_t(entries.count), 100)
            if ready <= 0 { continue }
            var stillPending: [Int] = []
            for (slot, index) in pending.enumerated() {
                guard entries[slot].revents != 0 else { stillPending.append(index); continue }
                var code: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fds[index], SOL_SOCKET, SO_ERROR, &code, &length)
                if code == 0 { outcome.connected += 1 } else { connectFailed(index, code) }
            }
            pending = stillPending
        }
        for index in pending { outcome.fail(index, "connect still in progress after \(timeout) s") }
        for index in queue { outcome.fail(index, "never connected before the \(timeout) s deadline") }
        outcome.connectSeconds = monotonicNow() - connectStart
        guard outcome.connected == count else { return outcome }

        // Phase 2: every connection sends its payload and reads it back, all at once.
        let echoStart = monotonicNow()
        var expected: [[UInt8]] = []
        expected.reserveCapacity(count)
        for index in 0..<count { expected.append(payload(index)) }
        var sent = [Int](repeating: 0, count: count)
        var received = [Int](repeating: 0, count: count)
        var buffers = expected.map { [UInt8](repeating: 0, count: $0.count + 64) }
        var active = Array(0..<count)
        var lastProgress = monotonicNow()
        while !active.isEmpty && monotonicNow() < (stallTimeout.map { lastProgress + $0 } ?? deadline) {
            entries.removeAll(keepingCapacity: true)
            for index in active {
                let wantWrite = sent[index] < expected[index].count
                entries.append(pollfd(fd: fds[index], events: Int16(POLLIN) | (wantWrite ? Int16(POLLOUT) : 0), revents: 0))
            }
            let ready = poll(&entries, nfds_t(entries.count), 100)
            if ready <= 0 { continue }
            var stillActive: [Int] = []
            stillActive.reserveCapacity(active.count)
            for (slot, index) in active.enumerated() {
                let events = Int32(entries[slot].revents)
                guard events != 0 else { stillActive.append(index); continue }
                let fd = fds[index]
                let length = expected[index].count
                if events & Int32(POLLOUT) != 0 && sent[index] < length {
                    let sending = SystemCall.outcome(retryingInterrupts: true) {
                        expected[index].withUnsafeBytes {
                            send(fd, $0.baseAddress! + sent[index], length - sent[index], Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                        }
                    }
                    if sending.value > 0 {
                        sent[index] += sending.value
                        lastProgress = monotonicNow()
                    } else if sending.failed && sending.error != EAGAIN {
                        outcome.fail(index, "send failed after \(sent[index]) of \(length) bytes: \(describeErrno(sending.error))")
                        continue
                    }
                }
                if events & (Int32(POLLIN) | Int32(POLLERR) | Int32(POLLHUP)) != 0 {
                    let room = buffers[index].count - received[index]
                    let receiving = SystemCall.outcome(retryingInterrupts: true) {
                        buffers[index].withUnsafeMutableBytes {
                            recv(fd, $0.baseAddress! + received[index], room, Int32(MSG_DONTWAIT))
                        }
                    }
                    if receiving.value == 0 {
                        outcome.fail(index, "EOF after \(received[index]) of \(length) echoed bytes (sent \(sent[index]))")
                        continue
                    }
                    if receiving.failed {
                        if receiving.error != EAGAIN {
                            outcome.fail(index, "recv failed after \(received[index]) of \(length) bytes: \(describeErrno(receiving.error))")
                            continue
                        }
                    } else {
                        received[index] += receiving.value
                        lastProgress = monotonicNow()
                    }
                }
                if received[index] >= length {
                    let got = Array(buffers[index][0..<received[index]])
                    if let problem = describeMismatch(expected: expected[index], received: got) {
                        outcome.fail(index, problem)
                    } else {
                        outcome.echoed += 1
                    }
                    continue
                }
                stillActive.append(index)
            }
            active = stillActive
        }
        for index in active {
            outcome.fail(index, (stallTimeout.map { "no byte moved for \($0) s" } ?? "timed out")
                + ": sent \(sent[index]) of \(expected[index].count) bytes, \(received[index]) echoed")
        }
        outcome.echoSeconds = monotonicNow() - echoStart
        return outcome
    }

    /// The payload for connection `index`: its index in text, then `size` - header seeded bytes, so
    /// each connection can tell its own bytes from anyone else's.
    static func taggedPayload(index: Int, size: Int, seed: UInt64) -> [UInt8] {
        let header = Array("#\(index)#".utf8)
        let body = randomBytes(max(0, size - header.count), seed: seed &+ UInt64(index) &* 0x1000_0000_01B3)
        return Array((header + body).prefix(max(size, 1)))
    }
}
