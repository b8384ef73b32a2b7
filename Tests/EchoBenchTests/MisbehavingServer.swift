#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLinux
import Synchronization
import EchoSupport

/// A small blocking echo server for the tests, with a thread per connection, that can be told to
/// misbehave in the ways `echo-bench` must notice.
final class MisbehavingServer: Sendable {
    enum Behaviour: Sendable {
        /// Echoes faithfully, but in pieces of `piece` bytes (the client sees partial reads).
        case dribble(piece: Int)
        /// Echoes, but flips one byte of every `every`th read.
        case flipByte(every: Int)
        /// Echoes the connection's first read over and over, whatever arrives later (stale bytes).
        case replayFirst
        /// Echoes `count` reads, then closes the connection.
        case closeAfter(count: Int)
        /// Reads and never answers.
        case blackHole
        /// Echoes faithfully, except during the first `pause` seconds of every `period` (counted
        /// from the server's start), when it neither reads nor answers.
        case pauseEvery(period: Double, pause: Double)
        /// Writes `greeting` to every connection as it is accepted, then echoes faithfully.
        case greet(greeting: [UInt8])
        /// Answers each read with the bytes of the read before it, from whichever connection
        /// (the very first is echoed): replies that belong to another connection.
        case crossTalk
    }

    let listener: ListeningSocket
    let behaviour: Behaviour
    private let acceptThread = Mutex<LoopThread?>(nil)
    private let connections = Mutex<[(descriptor: Int32, thread: LoopThread)]>([])
    private let stopping = Atomic<Bool>(false)
    /// `crossTalk`: the last read, from any connection.
    private let lastRead = Mutex<[UInt8]>([])
    /// When the server started, in `CLOCK_MONOTONIC` nanoseconds (`pauseEvery`'s origin).
    private let started = MisbehavingServer.monotonic()

    var port: Int { listener.port }

    init(_ behaviour: Behaviour) throws {
        listener = try ListeningSocket.bind(host: "127.0.0.1", port: 0, backlog: 512)
        self.behaviour = behaviour
        let thread = try LoopThread(name: "bad-accept") { [self] in acceptLoop() }
        acceptThread.withLock { $0 = thread }
    }

    /// Stops accepting, ends every connection and joins every thread.
    func stop() {
        stopping.store(true, ordering: .releasing)
        _ = shutdown(listener.fileDescriptor, Int32(SHUT_RDWR))
        acceptThread.withLock { $0 }?.join()
        let all = connections.withLock { $0 }
        for connection in all { _ = shutdown(connection.descriptor, Int32(SHUT_RDWR)) }
        for connection in all {
            connection.thread.join()
            _ = close(connection.descriptor)
        }
        listener.close()
    }

    private func acceptLoop() {
        while !stopping.load(ordering: .acquiring) {
            let accepted = SystemCall.outcome(retryingInterrupts: true) { accept(listener.fileDescriptor, nil, nil) }
            if accepted.failed {
                if accepted.error == ECONNABORTED { continue }
                return
            }
            let descriptor = accepted.value
            var one: Int32 = 1
            _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if case .greet(let greeting) = behaviour {
                _ = greeting.withUnsafeBufferPointer { Self.sendAll(descriptor, $0.baseAddress!, $0.count) }
            }
            guard let thread = try? LoopThread(name: "bad-conn", { [self] in serve(descriptor) }) else {
                _ = close(descriptor)
                continue
            }
            connections.withLock { $0.append((descriptor, thread)) }
        }
    }

    private func serve(_ descriptor: Int32) {
        let capacity = 1 << 16
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        let first = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        defer { buffer.deallocate(); first.deallocate() }
        var firstCount = 0
        var reads = 0
        // Flipping counts reads: small ones, so a connection meets a flip after a few KiB however
        // the client's bytes are batched (a slow machine hands a stream over in large reads).
        var readSize = capacity
        if case .flipByte = behaviour { readSize = 256 }
        while true {
            let count = SystemCall.outcome(retryingInterrupts: true) { read(descriptor, buffer, readSize) }.value
            if count <= 0 { return }
            reads += 1
            switch behaviour {
            case .dribble(let piece):
                var offset = 0
                while offset < count {
                    let size = min(piece, count - offset)
                    guard Self.sendAll(descriptor, buffer + offset, size) else { return }
                    offset += size
                }
            case .flipByte(let every):
                if reads % every == 0 { buffer[count / 2] ^= 0x5A }
                guard Self.sendAll(descriptor, buffer, count) else { return }
            case .replayFirst:
                if reads == 1 {
                    first.update(from: buffer, count: count)
                    firstCount = count
                }
                // As many bytes as arrived, taken from the first message, repeated as needed.
                var offset = 0
                while offset < count {
                    let size = min(firstCount, count - offset)
                    guard Self.sendAll(descriptor, first, size) else { return }
                    offset += size
                }
            case .closeAfter(let limit):
                if reads > limit {
                    // Closed by stop(): shut down here so the client sees the end of the stream now.
                    _ = shutdown(descriptor, Int32(SHUT_RDWR))
                    return
                }
                guard Self.sendAll(descriptor, buffer, count) else { return }
            case .blackHole:
                continue
            case .pauseEvery(let period, let pause):
                let periodNanoseconds = UInt64(period * 1e9)
                let phase = (Self.monotonic() - started) % periodNanoseconds
                let pauseNanoseconds = UInt64(pause * 1e9)
                if phase < pauseNanoseconds { usleep(UInt32((pauseNanoseconds - phase) / 1000)) }
                guard Self.sendAll(descriptor, buffer, count) else { return }
            case .greet:
                guard Self.sendAll(descriptor, buffer, count) else { return }
            case .crossTalk:
                let previous = lastRead.withLock { last in
                    defer { last = Array(UnsafeBufferPointer(start: buffer, count: count)) }
                    return last
                }
                let reply = previous.count == count ? previous : Array(UnsafeBufferPointer(start: buffer, count: count))
                guard reply.withUnsafeBufferPointer({ Self.sendAll(descriptor, $0.baseAddress!, count) }) else { return }
            }
        }
    }

    private static func monotonic() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private static func sendAll(_ descriptor: Int32, _ bytes: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let sent = SystemCall.outcome(retryingInterrupts: true) {
                send(descriptor, bytes + offset, count - offset, Int32(MSG_NOSIGNAL))
            }.value
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }
}
