#if canImport(Glibc)
import Glibc
#endif
import Testing
import Backend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// The echo property: whatever messages a client sends, however its writes are chunked and paced,
    /// and however many other clients do the same at once, the concatenation of what it receives equals
    /// the concatenation of what it sent.
    ///
    /// Every case is generated from a seed (SplitMix64): the same seed gives the same clients, streams,
    /// chunks, pauses and read sizes. A failure names its seed; set `ECHO_PROPERTY_SEEDS` (comma-separated,
    /// decimal or 0x-hex) to run exactly those seeds.
    @Suite("Property: random messages and chunking", .timeLimit(.minutes(1)))
    struct EchoProperty {
        /// Every backend that serves clients concurrently: each io_uring mode and switch, both epoll
        /// trigger modes, and the threaded blocking backend.
        static let backends = BackendUnderTest.concurrent

        static let seeds: [UInt64] = {
            if let text = getenv("ECHO_PROPERTY_SEEDS").map({ String(cString: $0) }) {
                let chosen = text.split(separator: ",").compactMap { word -> UInt64? in
                    let trimmed = String(word.filter { !$0.isWhitespace })
                    return trimmed.hasPrefix("0x") ? UInt64(trimmed.dropFirst(2), radix: 16) : UInt64(trimmed)
                }
                if !chosen.isEmpty { return chosen }
            }
            // Six fixed seeds: the same cases on every run, so a failure can be reproduced.
            var generator = SeededGenerator(seed: 0x5EED_EC40)
            return (0..<6).map { _ in generator.next() }
        }()

        @Test("32 clients, random messages in random chunks: each gets back exactly its stream",
              arguments: backends, seeds)
        func randomStreams(_ backend: BackendUnderTest, seed: UInt64) throws {
            let clientCount = 32
            let plans = (0..<clientCount).map { RandomStreamPlan(seed: seed, client: $0) }
            let total = plans.reduce(0) { $0 + $1.data.count }
            let seedText = "seed 0x\(String(seed, radix: 16)) (rerun with ECHO_PROPERTY_SEEDS=0x\(String(seed, radix: 16)))"
            let statistics = try withServer(backend) { server in
                let clients = plans.map { plan in
                    Background("client-\(plan.client)") { try plan.run(port: server.port) }
                }
                var failures: [String] = []
                let deadline = monotonicNow() + 30
                for (plan, client) in zip(plans, clients) {
                    do {
                        try client.wait(timeout: max(0.1, deadline - monotonicNow()))
                    } catch {
                        failures.append("client \(plan.client) (\(plan.summary)): \(error)")
                    }
                }
                #expect(failures.isEmpty, "\(seedText), \(failures.count) of \(clientCount) clients failed: \(failures.prefix(5).joined(separator: "; "))")
            }
            #expect(statistics[.bytesReceived] == UInt64(total) && statistics[.bytesSent] == UInt64(total),
                    "\(seedText): the clients sent \(total) bytes; \(describe(statistics))")
            #expect(statistics[.connectionsClosed] == UInt64(clientCount), "\(seedText): \(describe(statistics))")
        }
    }
}

/// One property-test client, generated from (seed, client): a random stream of 64 KiB – 1 MiB, cut into
/// messages of random size, each message written in random chunks of 1 B – 16 KiB, with a short pause
/// after some messages; the echo is read with random read sizes on another thread at the same time.
///
/// Sizes are log-uniform (a random power of two, then a random size up to it), so tiny writes and reads
/// are as common as large ones.
struct RandomStreamPlan: Sendable {
    /// One send(): `length` bytes, then a pause of `pauseMicroseconds` (0 for none).
    struct Write: Sendable {
        let length: Int
        let pauseMicroseconds: UInt32
    }

    let client: Int
    let data: [UInt8]
    let writes: [Write]
    let readSizes: [Int]
    let messageCount: Int

    init(seed: UInt64, client: Int) {
        self.client = client
        var generator = SeededGenerator(seed: seed ^ (UInt64(client + 1) &* 0xD1B5_4A32_D192_ED03))
        let total = Int.random(in: (64 * 1024)...(1024 * 1024), using: &generator)
        data = randomBytes(total, using: &generator)
        var writes: [Write] = []
        var messages = 0
        var offset = 0
        while offset < total {
            let message = min(Self.logUniform(upTo: 64 * 1024, using: &generator), total - offset)
            var left = message
            while left > 0 {
                let chunk = min(Self.logUniform(upTo: 16 * 1024, using: &generator), left)
                left -= chunk
                // A message ends with a pause one time in eight: 0.1 – 2 ms.
                let pause = left == 0 && Int.random(in: 0..<8, using: &generator) == 0
                    ? UInt32.random(in: 100...2000, using: &generator) : 0
                writes.append(Write(length: chunk, pauseMicroseconds: pause))
            }
            offset += message
            messages += 1
        }
        self.writes = writes
        messageCount = messages
        readSizes = (0..<64).map { _ in Self.logUniform(upTo: 64 * 1024, using: &generator) }
    }

    /// 1 ... `limit`: a power of two up to `limit` picked uniformly, then a size up to it.
    static func logUniform(upTo limit: Int, using generator: inout SeededGenerator) -> Int {
        let bits = Int.random(in: 0...(Int.bitWidth - 1 - limit.leadingZeroBitCount), using: &generator)
        return Int.random(in: 1...min(limit, 1 << bits), using: &generator)
    }

    var summary: String { "\(data.count) bytes in \(messageCount) messages, \(writes.count) writes" }

    /// Connects, writes the plan from a writer thread while this thread reads, closes; throws when the
    /// bytes received differ from the bytes sent, or on a timeout, EOF or error.
    func run(port: Int) throws {
        let connection = try TestClient(port: port)
        defer { connection.close() }
        let writer = Background("writer-\(client)") { [self] in
            try data.withUnsafeBytes { bytes in
                var offset = 0
                for write in writes {
                    try connection.sendAll(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + write.length)]))
                    offset += write.length
                    if write.pauseMicroseconds > 0 { usleep(write.pauseMicroseconds) }
                }
            }
        }
        let received: [UInt8]
        do {
            received = try receive(from: connection)
        } catch {
            let writerState: String
            do { try writer.wait(timeout: 1); writerState = "the writer had sent everything" } catch { writerState = "writer: \(error)" }
            throw TestFailure("\(error); \(writerState)")
        }
        try writer.wait(timeout: 10)
        if let problem = describeMismatch(expected: data, received: received) { throw TestFailure(problem) }
        // Nothing more than was sent: half-close, and the server's EOF must follow at once.
        try connection.shutdownWrite()
        let extra = try connection.receiveUntilEOF(limit: 0)
        if !extra.isEmpty { throw TestFailure("\(extra.count) bytes more than were sent") }
    }

    /// Reads `data.count` bytes with recv() calls of the plan's sizes, in turn.
    private func receive(from connection: TestClient) throws -> [UInt8] {
        try connection.receiveExactly(data.count, readSizes: readSizes)
    }
}
