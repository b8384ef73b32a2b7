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
/// 1. every loop connects its share and reports back; then the coordinator opens the `--idle`
///    connections (with helper processes when one process cannot hold them, see ``IdlePlan``);
/// 2. once all have, the coordinator fixes the schedule (now + warm-up = window start, + duration =
///    window end) and starts them together;
/// 3. it samples the process's CPU time at the window's start and end, joins the loops, checks
///    and closes the idle connections, and merges the loops' counts and histograms.
public enum BenchmarkRun {
    /// Descriptors kept free for everything that is not a connection.
    static let reservedDescriptors = 64

    public static func run(_ configuration: BenchmarkConfiguration) throws(BenchmarkError) -> BenchmarkReport {
        try configuration.validate()
        let address = try SocketAddress.resolve(host: configuration.host, port: configuration.port)
        let limit = FileDescriptorLimit.raiseToHardLimit()
        let plan = IdlePlan(idle: configuration.idle, connections: configuration.connections, threads: configuration.threads,
                            descriptorLimit: limit, reserved: reservedDescriptors, perProcess: configuration.idlePerProcess,
                            perSource: configuration.idlePerSource, portsPerSource: IdlePlan.portsPerSource(),
                            loopbackIPv4: address.isLoopbackIPv4)
        let needed = configuration.connections + configuration.threads + reservedDescriptors + plan.local.count
        guard needed <= limit else { throw .descriptorLimit(needed: needed, limit: limit) }

        let control = try RunControl()
        let connectStart = ProcessClock.monotonic()
        let outcomes = (0..<configuration.threads).map { _ in LoopOutcome() }
        var threads: [LoopThread] = []
        threads.reserveCapacity(configuration.threads)
        func abort() {
            control.abort()
            for thread in threads { thread.join() }
        }
        for index in 0..<configuration.threads {
            let outcome = outcomes[index]
            do {
                threads.append(try LoopThread(name: "echo-bench-\(index)") {
                    runLoop(configuration: configuration, address: address, index: index,
                            control: control, outcome: outcome)
                })
            } catch {
                abort()
                throw .system(error)
            }
        }

        // Connect phase: the measured connections in the loops, then the idle ones.
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
                abort()
                throw .system(error)
            case nil:
                break
            }
        }
        guard established > 0 else {
            abort()
            throw .cannotConnect(endpoint: configuration.endpoint, errno: firstError != 0 ? firstError : ETIMEDOUT)
        }
        let idle: IdleFleet
        do {
            idle = try IdleFleet(configuration: configuration, address: address, plan: plan)
        } catch {
            abort()
            throw error
        }

        // Warm-up and window.
        let monotonicStart = ProcessClock.monotonic()
        let realtimeStart = ProcessClock.realtime()
        let warmupEnd = monotonicStart &+ ProcessClock.nanoseconds(configuration.warmup)
        let windowEnd = warmupEnd &+ ProcessClock.nanoseconds(configuration.duration)
        control.start(runStart: monotonicStart, warmupEnd: warmupEnd, windowEnd: windowEnd)
        ProcessClock.sleep(until: warmupEnd)
        let cpuBefore = ProcessClock.processCPU()
        let sampledBefore = ProcessClock.monotonic()
        ProcessClock.sleep(until: windowEnd)
        let cpuAfter = ProcessClock.processCPU()
        let sampledAfter = ProcessClock.monotonic()
        for thread in threads { thread.join() }

        var total = LoopResult.empty
        for outcome in outcomes {
            if let result = outcome.result.withLock({ $0 }) { total.add(result) }
        }
        total.errors = total.errors + idle.finish()

        let cpuInterval = Double(sampledAfter &- sampledBefore) / 1e9
        let user = max(cpuAfter.user - cpuBefore.user, 0)
        let system = max(cpuAfter.system - cpuBefore.system, 0)
        var report = BenchmarkReport(
            configuration: configuration,
            elapsedSeconds: Double(windowEnd &- warmupEnd) / 1e9,
            requests: BenchmarkReport.requests(total, configuration),
            latency: total.latency,
            errors: total.errors,
            connectionsEstablished: established,
            connectSeconds: connectSeconds,
            cpu: .init(userSeconds: user, systemSeconds: system,
                       shareOfOneCore: cpuInterval > 0 ? (user + system) / cpuInterval : 0,
                       coresUsable: min(configuration.threads, ProcessClock.allowedCPUCount())),
            windowStartUnixNanoseconds: realtimeStart &+ (warmupEnd &- monotonicStart),
            windowEndUnixNanoseconds: realtimeStart &+ (windowEnd &- monotonicStart)
        )
        report.scheduledInWindow = total.scheduledInWindow
        report.connectionsOpened = UInt64(established) &+ total.reopened
        report.connectionsCompleted = total.connectionsCompleted
        report.connectLatency = total.connectLatency
        report.firstEchoLatency = total.firstEchoLatency
        report.streamBytes = total.streamBytes
        report.idleEstablished = idle.established
        report.idleProcesses = plan.helpers.count
        report.idleSources = plan.sources
        return report
    }

    /// The body of loop `index`'s thread.
    private static func runLoop(configuration: BenchmarkConfiguration, address: SocketAddress, index: Int,
                                control: RunControl, outcome: LoopOutcome) {
        var loop: ClientLoop
        do {
            loop = try ClientLoop(configuration: configuration, address: address,
                                  identifiers: configuration.share(ofLoop: index), loopIndex: index)
        } catch {
            outcome.connectPhase.withLock { $0 = .failure(error) }
            control.signalReady()
            return
        }
        loop.connectAll(timeout: ProcessClock.nanoseconds(configuration.connectTimeout))
        let phase = LoopOutcome.ConnectPhase(established: loop.tally.established, firstError: loop.firstConnectError)
        outcome.connectPhase.withLock { $0 = .success(phase) }
        control.signalReady()
        guard let schedule = control.waitForStart() else { return }
        loop.run(runStart: schedule.runStart, warmupEnd: schedule.warmupEnd, windowEnd: schedule.windowEnd)
        let result = loop.tally
        outcome.result.withLock { $0 = result }
    }
}
