#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import Backend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// Hostile clients against the `echo` executable in a child process: slowloris, idle (half-open)
    /// connections, half-closed connections, and a connect-and-vanish storm.
    ///
    /// The server runs in its own process so its descriptors (/proc/PID/fd) and resident memory
    /// (/proc/PID/status) can be read apart from this process's clients. Each scenario is judged by
    /// ``withHostileServer(_:scenario:_:)``: after it, a fresh client is echoed exactly, the server's
    /// descriptor count returns to its baseline, its memory has not grown without bound, and it is still
    /// running and exits 0 on SIGTERM. (Clients that never read are covered by the conformance suite.)
    @Suite("Hostile clients", .timeLimit(.minutes(1)))
    struct HostileClients {
        /// Every data path that serves several clients at once (each backend's copy path, epoll's
        /// splice path, the threaded blocking backend: the naive blocking mode cannot), and the
        /// io_uring legacy and bundle loops.
        static let backends: [BackendUnderTest] = BackendUnderTest.everyDataPath.filter(\.servesConcurrentClients)
            + [BackendUnderTest.uringLegacy, .uringBundle].filter(BackendUnderTest.runnable.contains)

        // MARK: Slowloris

        @Test("slowloris: 20 clients sending one byte a second do not starve 20 busy clients", arguments: backends)
        func slowloris(_ backend: BackendUnderTest) throws {
            try withHostileServer(backend, scenario: "slowloris") { server, _ in
                let port = server.port
                // Baseline: the busy clients alone, for one second.
                let alone = try BusyClients(port: port, count: 20, seed: 0x510_0001)
                sleep(seconds: 1)
                let baseline = try alone.stop()

                // The slow clients' messages: 2 or 3 bytes, so at most two one-second gaps (each gap
                // is a moment a server that waits for more bytes would be caught waiting).
                let slowCount = 20
                let messages = (0..<slowCount).map { randomBytes(2 + $0 % 2, seed: 0x510_1000 + UInt64($0)) }
                let slow = try (0..<slowCount).map { _ in try TestClient(port: port) }
                defer { slow.forEach { $0.close() } }

                let busy = try BusyClients(port: port, count: 20, seed: 0x510_0002)
                let started = monotonicNow()
                let trickle = try Self.trickle(messages, through: slow)
                let during = try busy.stop()
                let elapsed = monotonicNow() - started

                // Each byte comes back before the next is sent, a second later: the whole trickle
                // takes about two seconds; a server that waits for more bytes takes longer.
                #expect(trickle < Double(messages.map(\.count).max() ?? 0) + 2,
                        "the slow clients' bytes took \(trickle) s to come back one by one")
                #expect(during.rate >= baseline.rate / 4,
                        "busy clients: \(during) while 20 slow clients trickled (\(elapsed) s), \(baseline) alone")
            }
        }

        /// Sends `messages[i]` through `clients[i]` one byte a second, every client's byte in the same
        /// second; after each byte, reads back its echo (which must come before the next second). Then
        /// half-closes each client and expects EOF with nothing more. Returns the seconds it took.
        static func trickle(_ messages: [[UInt8]], through clients: [TestClient]) throws -> Double {
            let started = monotonicNow()
            let longest = messages.map(\.count).max() ?? 0
            for step in 0..<longest {
                sleep(seconds: started + Double(step) - monotonicNow())
                for (client, message) in zip(clients, messages) where step < message.count {
                    try client.sendAll([message[step]])
                }
                for (index, (client, message)) in zip(clients, messages).enumerated() where step < message.count {
                    let echoed = try client.receiveExactly(1)
                    if echoed != [message[step]] {
                        throw TestFailure("slow client \(index), byte \(step): sent \(message[step]), echoed \(echoed)")
                    }
                }
            }
            for (index, client) in clients.enumerated() {
                try client.shutdownWrite()
                let rest = try client.receiveUntilEOF(limit: 0)
                if !rest.isEmpty { throw TestFailure("slow client \(index): \(rest.count) bytes more than it sent") }
            }
            return monotonicNow() - started
        }

        // MARK: Idle (half-open) connections

        @Test("500 idle connections: the others are served, and closing them frees every descriptor", arguments: backends)
        func idleConnections(_ backend: BackendUnderTest) throws {
            try withHostileServer(backend, scenario: "500 idle connections") { server, inspector in
                let idleCount = 500
                var idle: [TestClient] = []
                defer { idle.forEach { $0.close() } }
                for _ in 0..<idleCount { idle.append(try TestClient(port: server.port)) }
                // The server has accepted them and holds them (they are not waiting in the backlog).
                let held = waitFor(timeout: 5, { inspector.heldConnections(port: server.port) }, until: { $0 >= idleCount })
                #expect(held.ok, "the server holds \(held.last) of \(idleCount) idle connections")

                // 50 clients echo 1 B – 32 KiB each, all at once, while the idle ones sit there.
                let outcome = ManyConnections.run(port: server.port, count: 50, window: 50, timeout: 15) { index in
                    ManyConnections.taggedPayload(index: index, size: 1 + (index * 7919) % (32 * 1024), seed: 0x1D1E)
                }
                #expect(outcome.echoed == 50, "with \(idleCount) idle connections open: \(outcome)")

                // Nothing was ever echoed to an idle client.
                let spoken = idle.indices.filter { idle[$0].readableWithin(0) != nil }
                #expect(spoken.isEmpty, "idle clients \(spoken.prefix(10)) received something")
                idle.forEach { $0.close() }
                idle.removeAll()
            }
        }

        // MARK: Half-closed connections

        @Test("100 clients half-close without sending: each gets EOF, the server closes them", arguments: backends)
        func halfClosedWithoutSending(_ backend: BackendUnderTest) throws {
            try withHostileServer(backend, scenario: "100 half-closed clients") { server, inspector in
                let clients = try (0..<100).map { _ in try TestClient(port: server.port) }
                defer { clients.forEach { $0.close() } }
                for client in clients { try client.shutdownWrite() }
                for (index, client) in clients.enumerated() {
                    // receiveUntilEOF returns only on read() == 0, and throws on a timeout or a reset.
                    do {
                        let received = try client.receiveUntilEOF(limit: 0)
                        #expect(received.isEmpty, "half-closed client \(index) received \(received.count) bytes")
                    } catch {
                        Issue.record("half-closed client \(index): \(error)")
                    }
                }
                // The server has closed its side completely while the clients still hold theirs open:
                // no descriptor of its own is left for these connections (not even a half-closed one).
                let held = waitFor(timeout: 5, { inspector.heldConnections(port: server.port) }, until: { $0 == 0 })
                #expect(held.ok, "the server still holds \(held.last) of the 100 half-closed connections")
            }
        }

        // MARK: Connect-and-vanish storm

        @Test("2000 connect-and-vanish clients (RST and FIN, 400 before accept): the server survives", arguments: backends)
        func connectAndVanishStorm(_ backend: BackendUnderTest) throws {
            try withHostileServer(backend, scenario: "connect-and-vanish storm") { server, _ in
                // 400 connections that are gone before the server could accept them: the server is
                // stopped (SIGSTOP, by its PID) while the kernel completes their handshakes and queues
                // them, and they are closed or reset in the accept queue. Then it runs on and must
                // accept and dispose of every one of them.
                server.child.send(signal: SIGSTOP)
                let queued: (vanished: Int, failures: [String])
                do {
                    defer { server.child.send(signal: SIGCONT) }
                    queued = try Self.storm(port: server.port, count: 400, threads: 2, batch: 10)
                }
                #expect(queued.failures.isEmpty, "while the server was stopped, \(queued.failures.count) connects failed; first: \(queued.failures.prefix(5))")
                #expect(queued.vanished == 400)

                // 1600 more against the running server, ten at a time per thread, four threads.
                let running = try Self.storm(port: server.port, count: 1600, threads: 4, batch: 10)
                #expect(running.failures.isEmpty, "\(running.failures.count) connects failed; first: \(running.failures.prefix(5))")
                #expect(running.vanished == 1600)
            }
        }

        /// The four ways a storm client vanishes, in turn: half reset (SO_LINGER {1, 0}), half closed
        /// plainly; half after a completed connect, half right after a non-blocking connect started
        /// (the handshake may not even have finished).
        enum Vanish: CaseIterable {
            case closeAfterConnect, resetAfterConnect, resetWhileConnecting, closeWhileConnecting

            var resets: Bool { self == .resetAfterConnect || self == .resetWhileConnecting }
            var blocking: Bool { self == .closeAfterConnect || self == .resetAfterConnect }
        }

        /// `count` connections from `threads` threads, opened `batch` at a time and then all closed at
        /// once, so many are closed while still in the server's accept queue. Connects that fail are
        /// returned as failures (a listener that died refuses them).
        static func storm(port: Int, count: Int, threads: Int, batch: Int) throws -> (vanished: Int, failures: [String]) {
            let perThread = count / threads
            let workers = (0..<threads).map { thread in
                Background("storm-\(thread)") { () throws -> (Int, [String]) in
                    var vanished = 0
                    var failures: [String] = []
                    var index = thread * perThread
                    let end = index + perThread
                    while index < end {
                        var open: [(fd: Int32, way: Vanish)] = []
                        for _ in 0..<min(batch, end - index) {
                            let way = Vanish.allCases[index % Vanish.allCases.count]
                            switch connectForStorm(port: port, blocking: way.blocking) {
                            case .success(let fd): open.append((fd, way))
                            case .failure(let failure): failures.append("connection \(index) (\(way)): \(failure)")
                            }
                            index += 1
                        }
                        for (fd, way) in open {
                            if way.resets {
                                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                                _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                            }
                            close(fd)
                            vanished += 1
                        }
                    }
                    return (vanished, failures)
                }
            }
            var vanished = 0
            var failures: [String] = []
            for worker in workers {
                let (done, failed) = try worker.wait(timeout: 30)
                vanished += done
                failures += failed
            }
            return (vanished, failures)
        }

        /// A socket connecting to 127.0.0.1:`port`: connected (blocking), or with the connect merely
        /// started (non-blocking, EINPROGRESS allowed).
        static func connectForStorm(port: Int, blocking: Bool) -> Result<Int32, TestFailure> {
            let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (blocking ? 0 : Int32(SOCK_NONBLOCK.rawValue))
            let opened = SystemCall.outcome { socket(AF_INET, flags, 0) }
            guard !opened.failed else { return .failure(TestFailure(SystemCall.failure("socket()", code: opened.error).description)) }
            let fd = opened.value
            let code = connectLoopback(fd, port: port, timeout: 10)
            if code == 0 || (!blocking && code == EINPROGRESS) { return .success(fd) }
            close(fd)
            return .failure(TestFailure(SystemCall.failure("connect", code: code).description))
        }
    }
}

// MARK: - The scenario harness

/// Runs one hostile `scenario` against `backend` as the `echo` executable, and judges the aftermath.
///
/// Before: start the server (its stderr is kept for failure messages), echo one probe, wait until the
/// server holds no connection, and record its descriptors and resident memory (the baseline). Then
/// `body` runs the scenario. After:
/// - the server is still running;
/// - a fresh client gets 64 KiB back exactly;
/// - the server's descriptor count returns to the baseline within 5 s (closed connections released);
/// - its resident memory has grown by less than 16 MiB (loose: malloc and the thread-stack cache keep
///   some of what the scenario used; a leak of a few KiB per connection still shows);
/// - SIGTERM ends it with exit code 0 within 5 s, without a crash report.
func withHostileServer(_ backend: BackendUnderTest, scenario: String,
                       _ body: (ServerProcess, ProcessInspector) throws -> Void) throws {
    let server = try ServerProcess(arguments: backend.cliArguments)
    let inspector = ProcessInspector(pid: server.child.pid)
    defer { server.child.killAndReap() }

    try echoOnce(port: server.port, size: 4096, seed: 0xBA5E)
    let quiet = waitFor(timeout: 5, { inspector.heldConnections(port: server.port) }, until: { $0 == 0 })
    let probeClosed = quiet.ok
    try #require(probeClosed, "the server still holds \(quiet.last) connections after the probe")
    let baseline = inspector.descriptors()
    let baselineResident = try #require(inspector.residentBytes(), "no VmRSS in /proc/\(inspector.pid)/status")

    do {
        try body(server, inspector)
    } catch {
        // A client's failure is often the server's death: say so.
        if let status = server.child.exitStatus() {
            throw TestFailure("\(scenario): \(error); echo ended (\(status)); stderr: \(server.child.standardError)")
        }
        throw error
    }
    if let status = server.child.exitStatus() {
        throw TestFailure("echo ended during \(scenario) (\(status)); stderr: \(server.child.standardError)")
    }
    // (a) A fresh client is served normally.
    do {
        try echoOnce(port: server.port, size: 64 * 1024, seed: 0xF4E5)
    } catch {
        Issue.record("a fresh client after \(scenario): \(error)")
    }
    // (b) Every descriptor the scenario cost is released.
    let settled = waitFor(timeout: 5, inspector.descriptors, until: { $0.count <= baseline.count })
    let extra = settled.last.filter { baseline[$0.key] != $0.value }
    let released = settled.ok
    #expect(released, "after \(scenario): \(settled.last.count) descriptors, \(baseline.count) at baseline; new: \(summarize(extra)) (\(inspector.heldConnections(port: server.port)) connections held)")
    if let resident = inspector.residentBytes() {
        let growth = resident - baselineResident
        #expect(growth < 16 * MiB, "resident memory grew by \(growth / 1024) KiB during \(scenario) (\(baselineResident / 1024) → \(resident / 1024) KiB)")
    }
    // (c) Still running, and a clean stop.
    #expect(server.child.isRunning, "echo died after \(scenario): \(server.child.standardError)")
    let status = server.stop(signal: SIGTERM, timeout: 5)
    let stderr = server.child.standardError
    #expect(status == .exited(0), "after \(scenario), SIGTERM: \(status.map(\.description) ?? "still running after 5 s"); stderr: \(stderr)")
    #expect(!looksLikeCrash(stderr), "stderr: \(stderr)")
}

/// What /proc says about another process (a server child): its descriptors, the connections it holds,
/// its resident memory.
struct ProcessInspector: Sendable {
    let pid: pid_t

    /// Descriptor number → what it points at ("socket:[1234]", "anon_inode:[io_uring]", a path…).
    func descriptors() -> [Int32: String] {
        guard let dir = opendir("/proc/\(pid)/fd") else { return [:] }
        defer { closedir(dir) }
        var result: [Int32: String] = [:]
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            guard let number = Int32(name) else { continue }
            var buffer = [CChar](repeating: 0, count: 512)
            let n = readlink("/proc/\(pid)/fd/\(number)", &buffer, buffer.count - 1)
            // A descriptor closed between readdir and readlink is not open any more.
            guard n > 0 else { continue }
            result[number] = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return result
    }

    /// How many descriptors the process held at one instant, never more: those listed with the same
    /// target by two listings in a row.
    ///
    /// One listing is not a snapshot: it walks the table while descriptors come and go, so a socket
    /// counted at a low number, closed, and followed by one the kernel numbers past the walk (its
    /// low number taken meanwhile by a pipe) is counted twice. A descriptor listed by both walks,
    /// pointing at the same socket, pipe or file, was open from the first to the second: at the
    /// instant between them, all of these were open at once.
    ///
    /// With `excludingPipes`, the splice paths' pipes are left out: their pool is bounded by its own
    /// limit (`pipeLimit`), not by the connection cap.
    func descriptorsHeldThroughout(excludingPipes: Bool = false) throws -> Int {
        guard kill(pid, 0) == 0 else { throw TestFailure("process \(pid) is gone") }
        let first = descriptors()
        let second = descriptors()
        return first.filter { number, target in
            second[number] == target && !(excludingPipes && target.hasPrefix("pipe:"))
        }.count
    }

    /// How many of the process's descriptors are the server's side of a connection on `port`: sockets
    /// listed in /proc/net/tcp{,6} with `port` as their local port and not listening. (A connection reset
    /// by its peer leaves those tables while the server still has its descriptor: the descriptor count
    /// is the final word, this is the quick one.)
    func heldConnections(port: Int) -> Int {
        let inodes = connectionSocketInodes(localPort: port)
        guard !inodes.isEmpty else { return 0 }
        return descriptors().values.filter { target in
            guard target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst(8).dropLast()) else { return false }
            return inodes.contains(inode)
        }.count
    }

    /// VmRSS from /proc/PID/status, in bytes.
    func residentBytes() -> Int? {
        guard let status = readWholeFile("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, let kibibytes = Int(fields[1]) else { return nil }
        return kibibytes * 1024
    }
}

/// `count` clients, each on its own thread, doing echo round trips (1 B – 1 KiB, verified) as fast as
/// the server answers until ``stop()``: the load whose throughput a hostile scenario must not crush.
final class BusyClients: Sendable {
    /// Round trips completed, and over how long.
    struct Throughput: CustomStringConvertible {
        let roundTrips: Int
        let seconds: Double
        var rate: Double { seconds > 0 ? Double(roundTrips) / seconds : 0 }
        var description: String { "\(roundTrips) round trips in \(String(format1: seconds)) s (\(Int(rate))/s)" }
    }

    /// Set once: the clients finish their round trip and stop.
    private final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    private let stopping = Flag()
    private let workers: [Background<Int>]
    private let started: Double

    /// Connects all `count` clients, then starts them.
    init(port: Int, count: Int, seed: UInt64) throws {
        let clients = try (0..<count).map { _ in try TestClient(port: port) }
        started = monotonicNow()
        var workers: [Background<Int>] = []
        for (index, client) in clients.enumerated() {
            var generator = SeededGenerator(seed: seed &+ UInt64(index) &* 0x9E37_79B9)
            let messages = (0..<16).map { _ in randomBytes(Int.random(in: 1...1024, using: &generator), using: &generator) }
            workers.append(Background("busy-\(index)") { [stopping] () throws -> Int in
                defer { client.close() }
                var trips = 0
                while !stopping.raised.load(ordering: .relaxed) {
                    let message = messages[trips % messages.count]
                    try client.sendAll(message)
                    let echoed = try client.receiveExactly(message.count)
                    if echoed != message { throw TestFailure("busy client \(index), round trip \(trips): echo differs") }
                    trips += 1
                }
                return trips
            })
        }
        self.workers = workers
    }

    /// Stops every client after its current round trip; throws the first client's failure.
    func stop() throws -> Throughput {
        stopping.raised.store(true, ordering: .relaxed)
        let seconds = monotonicNow() - started
        var trips = 0
        for worker in workers { trips += try worker.wait(timeout: 15) }
        return Throughput(roundTrips: trips, seconds: seconds)
    }
}

/// Inodes of the TCP sockets of this network namespace whose local port is `port` and that are not
/// listening (/proc/net/tcp and /proc/net/tcp6).
///
/// Parsed with a plain byte loop: earlier tests leave tens of thousands of TIME_WAIT entries in these
/// tables, and splitting them into Strings takes most of a second per read in a debug build.
func connectionSocketInodes(localPort port: Int) -> Set<UInt64> {
    var inodes = Set<UInt64>()
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        guard let bytes = readFileBytes(table) else { continue }
        bytes.withUnsafeBufferPointer { buffer in
            guard let text = buffer.baseAddress else { return }
            let end = buffer.count
            let newline = UInt8(ascii: "\n"), space = UInt8(ascii: " "), colon = UInt8(ascii: ":")
            var position = 0
            // Skip the header line.
            while position < end && text[position] != newline { position += 1 }
            while position < end {
                position += 1  // past the newline
                // Fields: sl, local address, remote address, state, tx:rx, tr:when, retransmits, uid,
                // timeout, inode. Only 1 (its port: hex after the last colon), 3 and 9 matter.
                var field = 0
                var localPort = -1
                var listening = false
                var inode: UInt64 = 0
                while position < end && text[position] != newline {
                    if text[position] == space { position += 1; continue }
                    var tokenEnd = position
                    while tokenEnd < end && text[tokenEnd] != space && text[tokenEnd] != newline { tokenEnd += 1 }
                    switch field {
                    case 1:
                        var digit = tokenEnd
                        while digit > position && text[digit - 1] != colon { digit -= 1 }
                        localPort = 0
                        while digit < tokenEnd { localPort = localPort << 4 | hexValue(text[digit]); digit += 1 }
                    case 3:
                        listening = tokenEnd - position == 2 && text[position] == UInt8(ascii: "0") && text[position + 1] == UInt8(ascii: "A")
                    case 9:
                        for index in position..<tokenEnd { inode = inode &* 10 &+ UInt64(text[index] &- UInt8(ascii: "0")) }
                    default:
                        break
                    }
                    field += 1
                    position = tokenEnd
                }
                if field > 9 && localPort == port && !listening && inode != 0 { inodes.insert(inode) }
            }
        }
    }
    return inodes
}

/// The value of one ASCII hexadecimal digit (upper or lower case).
private func hexValue(_ digit: UInt8) -> Int {
    digit >= UInt8(ascii: "a") ? Int(digit - UInt8(ascii: "a") + 10)
        : digit >= UInt8(ascii: "A") ? Int(digit - UInt8(ascii: "A") + 10) : Int(digit &- UInt8(ascii: "0"))
}

/// The bytes of a (proc) file, read until EOF.
private func readFileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = SystemCall.outcome(retryingInterrupts: true) { read(fd, &chunk, chunk.count) }.value
        if n < 0 { return nil }
        if n == 0 { return data }
        data.append(contentsOf: chunk[0..<n])
    }
}
