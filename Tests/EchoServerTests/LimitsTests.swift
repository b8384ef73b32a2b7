#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import Backend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// `--idle-timeout` and `--max-connections` against the `echo` executable, on every loop.
    @Suite("Limits", .timeLimit(.minutes(2)))
    struct Limits {
        // MARK: Idle timeout

        /// Every loop at once (each its own server): the test waits on timers, not on the CPU.
        @Test("an idle peer is closed between T and 1.2 T; a peer echoing every T/3 is never closed")
        func idleTimeoutPrecision() throws {
            let runs = BackendUnderTest.cli.map { backend in
                Background("idle timeout, \(backend)") { () throws -> Void in try Self.idleTimeout(backend) }
            }
            for (backend, run) in zip(BackendUnderTest.cli, runs) {
                do { try run.wait(timeout: 30) } catch { Issue.record("\(backend): \(error)") }
            }
        }

        private static func idleTimeout(_ backend: BackendUnderTest) throws {
            let timeout = 1.0
            let server = try LimitedServer(backend, ["--idle-timeout", String(timeout)])
            // Naive blocking serves one client at a time: the idle peer alone.
            let busy = backend.servesConcurrentClients ? try TestClient(port: server.port, ioTimeout: 5) : nil
            let idle = try TestClient(port: server.port, ioTimeout: 5)
            let connected = monotonicNow()
            let keepEchoing = busy.map { client in
                Background("peer echoing every T/3") { () throws -> Int in
                    var rounds = 0
                    while monotonicNow() - connected < 2.5 * timeout {
                        try client.sendAll([UInt8(rounds & 0xff)])
                        guard try client.receiveExactly(1) == [UInt8(rounds & 0xff)] else { throw TestFailure("wrong echo") }
                        rounds += 1
                        sleep(seconds: timeout / 3)
                    }
                    return rounds
                }
            }
            // The idle peer sees the end of stream once the server closes it.
            let seen = idle.readableWithin(3 * timeout)
            let closedAfter = monotonicNow() - connected
            guard seen == 0 else { throw TestFailure("the idle peer saw \(String(describing: seen)) instead of the end of stream") }
            guard closedAfter >= timeout - 0.02 else { throw TestFailure("closed after \(closedAfter) s, before the \(timeout) s timeout") }
            // The upper bound catches a sweep that is far off, not a slow machine: 1.2 T plus the
            // scheduling a loaded CI machine adds.
            guard closedAfter <= 1.2 * timeout + 0.3 else {
                throw TestFailure("closed after \(closedAfter) s, not within 1.2 × \(timeout) s")
            }
            if let keepEchoing {
                let rounds = try keepEchoing.wait(timeout: 10)
                guard rounds >= 6 else { throw TestFailure("the echoing peer made only \(rounds) round trips") }
            }
            let statistics = try server.stop()
            guard statistics["closed_idle"] == 1 else { throw TestFailure("closed_idle is not 1: \(statistics)") }
        }

        // MARK: Connection cap

        @Test("connect storm above the cap: every connection is served once the cap frees, nothing is lost",
              arguments: BackendUnderTest.concurrentLoops)
        func connectStorm(_ backend: BackendUnderTest) throws {
            let cap = 20
            let storm = 200
            let server = try LimitedServer(backend, ["--max-connections", String(cap)])
            let base = try server.descriptors()
            let maxDescriptors = Atomic<Int>(base)
            let sampling = Atomic<Bool>(true)
            let sampler = Background("descriptor sampler") { () -> Void in
                while sampling.load(ordering: .relaxed) {
                    if let count = try? server.descriptors() { maxDescriptors.max(count) }
                    sleep(seconds: 0.005)
                }
            }
            // Every client connects at once (the kernel queues them in the backlog), then each
            // echoes a payload of its own and leaves, which frees a slot for the next.
            var clients: [TestClient] = []
            defer { clients.forEach { $0.close() } }
            for _ in 0..<storm { clients.append(try TestClient(port: server.port, ioTimeout: 20)) }
            let workers = (0..<4).map { worker in
                Background("storm \(worker)") { [clients] () throws -> Int in
                    var served = 0
                    for index in stride(from: worker, to: clients.count, by: 4) {
                        var generator = SeededGenerator(seed: UInt64(index))
                        let payload = randomBytes(300, using: &generator)
                        try clients[index].sendAll(payload)
                        guard try clients[index].receiveExactly(payload.count) == payload else {
                            throw TestFailure("client \(index) got another echo")
                        }
                        clients[index].close()
                        served += 1
                    }
                    return served
                }
            }
            let served = try workers.reduce(0) { $0 + (try $1.wait(timeout: 60)) }
            sampling.store(false, ordering: .relaxed)
            try sampler.wait(timeout: 10)
            #expect(served == storm)
            print("connect storm, \(backend): \(served) of \(storm) served with a cap of \(cap); descriptors \(base) at rest, "
                + "\(maxDescriptors.load(ordering: .relaxed)) at most")
            let statistics = try server.stop()
            #expect(statistics["connections_accepted"] == storm + 1, "\(statistics)")  // + the start-up probe
            #expect(statistics["accept_pauses"] ?? 0 >= 1, "\(statistics)")
            #expect(maxDescriptors.load(ordering: .relaxed) <= base + cap,
                    "the server held \(maxDescriptors.load(ordering: .relaxed)) descriptors, \(base) at rest, cap \(cap)")
        }

        @Test("--over-limit close: connections over the cap are accepted and closed at once, counted; open ones are not disturbed",
              arguments: BackendUnderTest.concurrentLoops)
        func overLimitClose(_ backend: BackendUnderTest) throws {
            let server = try LimitedServer(backend, ["--max-connections", "3", "--over-limit", "close"])
            let kept = try (0..<3).map { _ in try TestClient(port: server.port, ioTimeout: 5) }
            for client in kept {  // accepted and served: the cap is full
                try client.sendAll([7])
                #expect(try client.receiveExactly(1) == [7])
            }
            for _ in 0..<5 {
                let extra = try TestClient(port: server.port, ioTimeout: 5)
                #expect(extra.readableWithin(5) == 0, "a connection over the cap was not closed")
                extra.close()
            }
            for client in kept {
                try client.sendAll([8])
                #expect(try client.receiveExactly(1) == [8], "an open connection was disturbed")
            }
            let statistics = try server.stop()
            #expect(statistics["accepts_refused"] == 5, "\(statistics)")
        }

        // MARK: Slowloris army

        /// 50 busy clients echo with every byte checked while 1000 slowloris clients (half idle,
        /// half trickling a byte now and then) come and go: the cap keeps the server's descriptors
        /// bounded, the idle timeout frees the slots the idle ones take, and the busy clients are
        /// never starved: no round of theirs waits as long as the idle timeout.
        ///
        /// How much throughput they keep is printed, not asserted: the army runs in this process on
        /// the same cores, so the share measures the machine as much as the server (about 50–100 %
        /// here, a third under an emulated kernel).
        @Test("slowloris army: busy clients are never starved, descriptors stay under the cap",
              arguments: BackendUnderTest.concurrentLoops)
        func slowlorisArmy(_ backend: BackendUnderTest) throws {
            FileDescriptorLimit.raiseToHardLimit()
            let cap = 500
            let idleTimeout = 2.0
            let server = try LimitedServer(backend, ["--idle-timeout", String(idleTimeout), "--max-connections", String(cap)])
            let base = try server.descriptors()
            let busyClients = try (0..<50).map { _ in try TestClient(port: server.port, ioTimeout: 20) }
            defer { busyClients.forEach { $0.close() } }

            let phase = Atomic<Int>(0)  // 0: alone, 1: with the army, 2: done
            // Rounds alone and with the army, and the longest a round took with the army.
            let rounds = Background("busy clients") { () throws -> (counts: [Int], longest: Double) in
                var counts = [0, 0]
                var longest = 0.0
                var generator = SeededGenerator(seed: 7)
                while true {
                    let now = phase.load(ordering: .relaxed)
                    if now == 2 { return (counts, longest) }
                    let roundStarted = monotonicNow()
                    let payloads = busyClients.indices.map { _ in randomBytes(128, using: &generator) }
                    for (client, payload) in zip(busyClients, payloads) { try client.sendAll(payload) }
                    for (client, payload) in zip(busyClients, payloads) {
                        guard try client.receiveExactly(payload.count) == payload else { throw TestFailure("wrong echo") }
                    }
                    counts[now] += 1
                    if now == 1 { longest = max(longest, monotonicNow() - roundStarted) }
                }
            }
            sleep(seconds: 1)
            phase.store(1, ordering: .relaxed)

            // The army: 1000 connections over 2 s; each stays 1–4 s (the ones idle for 2 s are
            // closed by the server first), then leaves; the odd ones trickle a byte every 0.5 s.
            var army: [(client: TestClient, opened: Double, leaves: Double, trickles: Bool)] = []
            var maxDescriptors = base
            // Connections the server had to hold or queue at once: the busy ones, and the army's that
            // trickle or are younger than the idle timeout (older idle ones it may have closed).
            var mostOffered = busyClients.count
            let started = monotonicNow()
            var opened = 0
            var lastTrickle = started
            while monotonicNow() - started < 3.2 {
                let now = monotonicNow()
                while opened < 1000 && Double(opened) < (now - started) / 2 * 1000 {
                    let client = try TestClient(port: server.port, ioTimeout: 1)
                    army.append((client, now, now + 1 + Double(opened % 4), opened % 2 == 1))
                    opened += 1
                }
                if now - lastTrickle >= 0.5 {
                    lastTrickle = now
                    for member in army where member.trickles {
                        _ = send(member.client.fileDescriptor, "x", 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                    }
                }
                army.removeAll { member in
                    guard member.leaves <= now else { return false }
                    member.client.close()
                    return true
                }
                let live = army.lazy.filter { $0.trickles || now - $0.opened < idleTimeout }.count
                mostOffered = max(mostOffered, busyClients.count + live)
                maxDescriptors = max(maxDescriptors, try server.descriptors())
                sleep(seconds: 0.01)
            }
            let armyPhase = monotonicNow() - started
            phase.store(2, ordering: .relaxed)
            let (counts, longest) = try rounds.wait(timeout: 30)
            army.forEach { $0.client.close() }

            let alone = Double(counts[0])
            let besieged = Double(counts[1]) / armyPhase
            print("slowloris army, \(backend): busy rounds/s \(Int(alone)) alone, \(Int(besieged)) with the army "
                + "(\(Int((besieged / max(alone, 1) * 100).rounded())) %), the longest round \(Int(longest * 1000)) ms; "
                + "descriptors \(base) at rest, \(maxDescriptors) at most (cap \(cap)); "
                + "up to \(mostOffered) connections to hold or queue at once")
            #expect(counts[1] > 0 && longest < idleTimeout,
                    "the busy clients made \(counts[1]) rounds with the army, the longest took \(longest) s")
            #expect(maxDescriptors <= base + cap, "the server held \(maxDescriptors) descriptors, \(base) at rest, cap \(cap)")
            // The busy clients leave too: the server comes back to its descriptors at rest.
            busyClients.forEach { $0.close() }
            let settled = waitFor(timeout: 10, { (try? server.descriptors()) ?? -1 }, until: { $0 == base })
            #expect(settled.ok, "the server holds \(settled.last) descriptors after everyone left, \(base) at rest")
            let statistics = try server.stop()
            #expect(statistics["closed_idle"] ?? 0 > 0, "\(statistics)")
            // A slow machine may open the army too slowly to pass the cap; where it passed, the
            // server must have paused (the connect storm above checks the pause on its own).
            if mostOffered > cap {
                #expect(statistics["accept_pauses"] ?? 0 > 0, "\(mostOffered) connections to hold or queue at once: \(statistics)")
            }
        }
    }
}

/// An `echo` child with limits: its descriptors, and its counters when it stops.
private struct LimitedServer {
    let process: ServerProcess
    var port: Int { process.port }

    init(_ backend: BackendUnderTest, _ limits: [String]) throws {
        process = try ServerProcess(arguments: backend.cliArguments + limits + ["--quiet"], statistics: true)
        // The start-up probe's connection counts against the cap until the server has accepted
        // and closed it (it may still wait in the backlog, closed by the client, when no connection
        // is open yet).
        try process.waitUntil("rid of the start-up probe") {
            $0.integer("connections_accepted") >= 1 && $0.integer("connections_open") == 0
        }
    }

    /// Descriptors the server holds now, its pipes (`--splice`) left out: the cap bounds
    /// connections, and the pipe pool has a bound of its own.
    func descriptors() throws -> Int {
        try ProcessInspector(pid: process.child.pid).descriptorsHeldThroughout(excludingPipes: true)
    }

    /// Stops the server (SIGTERM) and returns its final counters by key.
    func stop() throws -> [String: Int] {
        guard process.stop(timeout: 5) != nil else { throw TestFailure("echo did not stop within 5 s") }
        let document = try process.writtenStatistics()
        return Dictionary(uniqueKeysWithValues: document.keys.map { ($0, document.integer($0)) })
    }
}

extension Atomic where Value == Int {
    /// Raises the value to `candidate` when it is larger.
    func max(_ candidate: Int) {
        var current = load(ordering: .relaxed)
        while candidate > current {
            let (exchanged, original) = compareExchange(expected: current, desired: candidate, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
