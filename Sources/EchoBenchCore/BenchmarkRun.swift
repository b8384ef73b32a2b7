import Backend
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// Runs one benchmark: connects, warms up, measures, and reports.
///
/// ```swift
/// let report = try BenchmarkRun.run(BenchmarkConfiguration(port: server.port, duration: 1, warmup: 0))
/// print(report.requestsPerSecond)
/// ```
///
/// The calling thread coordinates and otherwise sleeps; each of `threads` event loops runs on a
/// ``LoopThread`` of its own with a contiguous share of the connections:
/// 1. every loop connects its share and reports back;
/// 2. once all have, the coordinator fixes the schedule (now + warm-up = window start, + duration =
///    window end) and starts them together;
/// 3. it samples the process's CPU time at the window's start and end, joins the loops and merges
///    their counts and histograms.
public enum BenchmarkRun {
    /// Descriptors kept free for everything that is not a connection.
    static let reservedDescriptors = 64

    public static func run(_ configuration: BenchmarkConfiguration) throws(BenchmarkError) -> BenchmarkReport {
        try configuration.validate()
        let address = try SocketAddress.resolve(host: configuration.host, port: configuration.port)
        let limit = FileDescriptorLimit.raiseToHardLimit()
        let needed = configuration.connections + configuration.threads + reservedDescriptors
        guard needed <= limit else { throw .descriptorLimit(needed: needed, limit: limit) }

        let control = try RunControl()
        let connectStart = ProcessClock.monotonic()
        let outcomes = (0..<configuration.threads).map { _ in LoopOutcome() }
        var threads: [LoopThread] = []
        threads.reserveCapacity(configuration.threads)
        for index in 0..<configuration.threads {
            let outcome = outcomes[index]
            let share = configuration.share(ofLoop: index)
            do {
                threads.append(try LoopThread(name: "echo-bench-\(index)") {
                    runLoop(configuration: configuration, address: address, share: share,
                            control: control, outcome: outcome)
                })
            } catch {
                control.abort()
                for thread in threads { thread.join() }
                throw .system(error)
            }
        }

        // Connect phase.
        control.waitForReady(count: threads.count)
        let connectSeconds = Double(ProcessClock.monotonic() &- connectStart) / 1e9
        var established = 0
        var firstError: Int32 = 0
        for outcome in outcomes {
            switch outcome.connectPhase.withLock({ $0 }) {
            case .success(let phase)?:
                established += phase.established
                if firstError == 0 { firstError = phase.firstError }
            case .failure(let error)?:
                control.abort()
                for thread in threads { thread.join() }
                throw .system(error)
            case nil:
                break
            }
        }
        guard established > 0 else {
            control.abort()
            for thread in threads { thread.join() }
            throw .cannotConnect(endpoint: configuration.endpoint, errno: firstError != 0 ? firstError : ETIMEDOUT)
        }

        // Warm-up and window.
        let monotonicStart = ProcessClock.monotonic()
        let realtimeStart = ProcessClock.realtime()
        let warmupEnd = monotonicStart &+ ProcessClock.nanoseconds(configuration.warmup)
        let windowEnd = warmupEnd &+ ProcessClock.nanoseconds(configuration.duration)
        control.start(warmupEnd: warmupEnd, windowEnd: windowEnd)
        ProcessClock.sleep(until: warmupEnd)
        let cpuBefore = ProcessClock.processCPU()
        let sampledBefore = ProcessClock.monotonic()
        ProcessClock.sleep(until: windowEnd)
        let cpuAfter = ProcessClock.processCPU()
        let sampledAfter = ProcessClock.monotonic()
        for thread in threads { thread.join() }

        var requests: UInt64 = 0
        var errors = ErrorCounts()
        var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: ClientLoop.latencyLimit,
                                        numberOfSignificantValueDigits: .three)
        for outcome in outcomes {
            guard let result = outcome.result.withLock({ $0 }) else { continue }
            requests &+= result.requests
            errors = errors + result.errors
            latency.add(result.latency)
        }

        let cpuInterval = Double(sampledAfter &- sampledBefore) / 1e9
        let user = max(cpuAfter.user - cpuBefore.user, 0)
        let system = max(cpuAfter.system - cpuBefore.system, 0)
        return BenchmarkReport(
            configuration: configuration,
            elapsedSeconds: Double(windowEnd &- warmupEnd) / 1e9,
            requests: requests,
            latency: latency,
            errors: errors,
            connectionsEstablished: established,
            connectSeconds: connectSeconds,
            cpu: .init(userSeconds: user, systemSeconds: system,
                       shareOfOneCore: cpuInterval > 0 ? (user + system) / cpuInterval : 0,
                       coresUsable: min(configuration.threads, ProcessClock.allowedCPUCount())),
            windowStartUnixNanoseconds: realtimeStart &+ (warmupEnd &- monotonicStart),
            windowEndUnixNanoseconds: realtimeStart &+ (windowEnd &- monotonicStart)
        )
    }

    /// The body of one loop thread.
    private static func runLoop(configuration: BenchmarkConfiguration, address: SocketAddress, share: Range<Int>,
                                control: RunControl, outcome: LoopOutcome) {
        var loop: ClientLoop
        do {
            loop = try ClientLoop(configuration: configuration, address: address, identifiers: share)
        } catch {
            outcome.connectPhase.withLock { $0 = .failure(error) }
            control.signalReady()
            return
        }
        loop.connectAll(timeout: ProcessClock.nanoseconds(configuration.connectTimeout))
        let phase = LoopOutcome.ConnectPhase(established: loop.established, firstError: loop.firstConnectError)
        outcome.connectPhase.withLock { $0 = .success(phase) }
        control.signalReady()
        guard let schedule = control.waitForStart() else { return }
        loop.run(warmupEnd: schedule.warmupEnd, windowEnd: schedule.windowEnd)
        let result = loop.result
        outcome.result.withLock { $0 = result }
    }
}
