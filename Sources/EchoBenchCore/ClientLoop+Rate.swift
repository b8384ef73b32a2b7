import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// The open loop's state in one loop.
struct RateState {
    /// This loop's share of the rate (requests per second).
    let perSecond: Double
    /// The arrival times (made at the start; a placeholder until then).
    var schedule: ArrivalSchedule
    /// Where the round-robin of arrivals over the connections stands.
    var nextSlot = 0
    /// Requests due in the window issued and not yet answered.
    var outstandingInWindow: UInt64 = 0

    /// The state of loop `loopIndex`, its share of the rate in proportion to its connections
    /// (a rate of 0 outside the open loop).
    init(configuration: BenchmarkConfiguration, loopIndex: Int) {
        if case .rate(let rate) = configuration.mode {
            perSecond = rate.perSecond * Double(configuration.share(ofLoop: loopIndex).count) / Double(configuration.connections)
        } else {
            perSecond = 0
        }
        schedule = ArrivalSchedule(rate: max(perSecond, 1), arrival: .uniform, start: .max)
    }
}

/// `--rate`: the open loop.
///
/// Arrivals follow the loop's ``ArrivalSchedule`` whatever the server does, and go round-robin to
/// the connections. A connection sends an arrival at once when it has fewer than `inFlight`
/// requests in flight; otherwise the request waits in the connection's queue (its due time in the
/// ring), and is dropped when `queueLimit` are already waiting. Latency counts from the due time, so a
/// stall delays, and shows in, every request due during it (wrk2's correction for coordinated
/// omission).
extension ClientLoop {
    /// Starts the schedule at `runStart`, this loop's arrivals interleaved with the other loops',
    /// and lets the thread's timers fire to the nanosecond (the default slack is 50 µs).
    mutating func startSchedule(at runStart: UInt64, arrival: ArrivalSchedule.Arrival) {
        let loopRate = modeState.rate.perSecond
        let phase = UInt64((Double(loopIndex) * 1e9 / (loopRate * Double(loops))).rounded())
        modeState.rate.schedule = ArrivalSchedule(rate: loopRate, arrival: arrival, start: runStart &+ phase,
                                                  seed: 0x5EED_0F_A771_7A15 ^ UInt64(loopIndex))
        _ = clinux_set_timer_slack(1)
    }

    /// Admits every arrival due by `now` (and before the window's end), dropping those that find
    /// `queueLimit` requests of their connection waiting. Out of line, so that the loop around the
    /// per-request path stays small enough for that path to be inlined.
    @inline(never)
    mutating func admitArrivals(now: UInt64, queueLimit: Int) {
        let queueLimit = UInt64(truncatingIfNeeded: queueLimit)
        while modeState.rate.schedule.next <= now && modeState.rate.schedule.next < windowEnd {
            let due = modeState.rate.schedule.next
            modeState.rate.schedule.advance()
            let inWindow = due >= warmupEnd
            if inWindow { tally.scheduledInWindow &+= 1 }
            guard let slot = nextActiveSlot() else { return }
            let connection = connections + slot
            let started = (connection.pointee.bytesSent &+ messageLength &- 1) / messageLength
            if connection.pointee.issued &- started >= queueLimit {
                tally.errors.dropped &+= 1
                continue
            }
            issue(slot, connection, at: due)
            if inWindow { modeState.rate.outstandingInWindow &+= 1 }
            if !connection.pointee.wantsWrite && connection.pointee.bytesSent < sendLimit(connection) {
                send(slot, connection)
            }
        }
    }

    /// How far connection `connection`'s byte stream may be sent now: to the end of the requests
    /// issued, and at most `inFlight` messages ahead of the echoes.
    @inline(__always)
    func rateSendLimit(_ connection: UnsafeMutablePointer<ClientConnection>, inFlight: UInt64) -> UInt64 {
        min(connection.pointee.issued, connection.pointee.bytesReceived / messageLength &+ inFlight) &* messageLength
    }

    /// The next active connection in round-robin order, or nil when none is left.
    @inline(__always)
    private mutating func nextActiveSlot() -> Int? {
        var tried = 0
        while tried < count {
            let slot = modeState.rate.nextSlot
            modeState.rate.nextSlot = slot + 1 == count ? 0 : slot + 1
            if connections[slot].state == .active { return slot }
            tried += 1
        }
        return nil
    }

    /// An echo of a request due at `due` completed at `now`: counts it if it was due in the window.
    @inline(__always)
    mutating func answered(due: UInt64, now: UInt64) {
        guard due >= warmupEnd && due < windowEnd else { return }
        tally.requests &+= 1
        modeState.rate.outstandingInWindow &-= 1
        Self.record(&tally.latency, from: due, to: now)
    }

    /// After the window: serves events until every request due in it is answered, or for the
    /// stall threshold at most.
    mutating func drain() {
        let deadline = windowEnd &+ stallThreshold
        while modeState.rate.outstandingInWindow > 0 && active > 0 {
            let now = ProcessClock.monotonic()
            if now >= deadline { break }
            if wait(until: deadline, now: now, { $0.serve($1, events: $2) }) < 0 { break }
        }
    }

    /// Connection `slot` failed: its requests due in the window will never be answered.
    mutating func forgetOutstanding(_ slot: Int) {
        let connection = connections + slot
        var message = connection.pointee.bytesReceived / messageLength
        while message < connection.pointee.issued {
            let due = times[ring(slot, message)]
            if due >= warmupEnd && due < windowEnd { modeState.rate.outstandingInWindow &-= 1 }
            message &+= 1
        }
    }
}

/// The open loop's figures in the report.
extension BenchmarkReport {
    /// `--rate`: requests due in the window per second (Poisson arrivals make it differ from the
    /// target a little).
    public var offeredRate: Double? {
        guard case .rate = configuration.mode, elapsedSeconds > 0 else { return nil }
        return Double(scheduledInWindow) / elapsedSeconds
    }

    /// `--rate`: requests due in the window and answered, per second.
    public var achievedRate: Double? {
        guard case .rate = configuration.mode else { return nil }
        return requestsPerSecond
    }

    /// `--rate`: whether every request due in the window was sent and answered (none dropped,
    /// none still unanswered a stall threshold after the window).
    public var sustained: Bool? {
        guard case .rate = configuration.mode else { return nil }
        return requests >= scheduledInWindow
    }

    /// The open loop's JSON values.
    func rateValues(_ rate: BenchmarkMode.Rate, into values: inout ModeValues) {
        values.targetRate = JSONText.number(rate.perSecond)
        values.arrival = JSONText.string(rate.arrival.rawValue)
        values.queueLimit = String(rate.queueLimit)
        values.offeredRate = offeredRate.map { JSONText.fixed($0, 1) }
        values.achievedRate = achievedRate.map { JSONText.fixed($0, 1) }
        values.sustained = sustained.map { $0 ? "true" : "false" }
    }

    /// The open loop's summary line.
    func rateSummaryLine(_ rate: BenchmarkMode.Rate) -> String {
        let verdict = sustained == true
            ? "sustained"
            : "NOT sustained: \(scheduledInWindow &- min(requests, scheduledInWindow)) of \(scheduledInWindow) due in the window "
                + "dropped or unanswered"
        return "  rate         target \(JSONText.fixed(rate.perSecond, 1))/s (\(rate.arrival.rawValue)), "
            + "offered \(JSONText.fixed(offeredRate ?? 0, 1))/s, achieved \(JSONText.fixed(achievedRate ?? 0, 1))/s: \(verdict)"
    }
}
