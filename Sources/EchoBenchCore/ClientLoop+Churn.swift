#if canImport(Glibc)
import Glibc
#endif

/// Churn's state in one loop.
struct ChurnState {
    /// Connections whose replacement's connect is under way.
    var reconnecting = 0
}

/// `--requests-per-connection`: churn.
///
/// After its last echo a connection closes (the client first, so `TIME_WAIT` stays on the client's
/// side, which Linux reuses for loopback connects) and a new one opens in its slot at once
/// (non-blocking; the loop serves the others meanwhile). The slot's message numbers continue, so the new
/// connection's payload is its own. Connect latency runs from the connect's start to `EPOLLOUT`,
/// first-echo latency from the connect's start to the first echo's last byte; both are recorded
/// for connections opened in the window.
extension ClientLoop {
    /// An echo on connection `slot` completed at `now`, inside the run: replaces the connection
    /// after its `requestsPerConnection`th echo, otherwise issues its next request. Returns false
    /// when it was replaced.
    @inline(__always)
    mutating func churnEcho(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>, now: UInt64,
                            requestsPerConnection: Int) -> Bool {
        connection.pointee.echoesOnConnection &+= 1
        if connection.pointee.echoesOnConnection == 1 && connection.pointee.connectStarted != 0 && now >= warmupEnd {
            Self.record(&tally.firstEchoLatency, from: connection.pointee.connectStarted, to: now)
        }
        guard Int(connection.pointee.echoesOnConnection) >= requestsPerConnection else {
            issue(slot, connection, at: now)
            return true
        }
        replace(slot, connection, now: now)
        return false
    }

    /// Closes connection `slot` and starts a new one in its place.
    private mutating func replace(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>, now: UInt64) {
        _ = Glibc.close(connection.pointee.descriptor)
        connection.pointee.descriptor = -1
        if now >= warmupEnd { tally.connectionsCompleted &+= 1 }
        connection.pointee.echoesOnConnection = 0
        connection.pointee.wantsWrite = false
        connection.pointee.connectStarted = ProcessClock.monotonic()
        let code = openConnection(slot)
        if code == 0 {
            tally.reopened &+= 1
            connected(slot, connection)
        } else if code == EINPROGRESS {
            modeState.churn.reconnecting += 1
        } else {
            tally.errors.connect &+= 1
            active -= 1
            closeSocket(slot)
        }
    }

    /// `EPOLLOUT` on connection `slot`, which is reconnecting: starts its traffic, or counts the
    /// failed connect.
    mutating func reconnected(_ slot: Int) {
        modeState.churn.reconnecting -= 1
        guard connectOutcome(slot) == 0 else {
            tally.errors.connect &+= 1
            active -= 1
            closeSocket(slot)
            return
        }
        tally.reopened &+= 1
        connected(slot, connections + slot)
    }

    /// Connection `slot`'s replacement is connected: records the connect latency and sends its
    /// first request.
    private mutating func connected(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        let now = ProcessClock.monotonic()
        if now >= warmupEnd && now < windowEnd { Self.record(&tally.connectLatency, from: connection.pointee.connectStarted, to: now) }
        connection.pointee.state = .active
        issue(slot, connection, at: now)
        send(slot, connection)
    }

    /// After the run (every other socket closed): waits, for the stall threshold at most, for the
    /// reconnects still under way, counts those that connected (the server accepts them) and
    /// closes them. Those that never settle count as failed connects.
    mutating func settleReconnects() {
        let deadline = ProcessClock.monotonic() &+ stallThreshold
        while modeState.churn.reconnecting > 0 {
            let now = ProcessClock.monotonic()
            if now >= deadline { break }
            let ready = wait(until: deadline, now: now) { loop, slot, _ in
                guard loop.connections[slot].state == .connecting else { return }
                loop.modeState.churn.reconnecting -= 1
                if loop.connectOutcome(slot) == 0 { loop.tally.reopened &+= 1 } else { loop.tally.errors.connect &+= 1 }
                loop.closeSocket(slot)
            }
            if ready < 0 { break }
        }
        for slot in 0..<count where connections[slot].state == .connecting {
            tally.errors.connect &+= 1
            closeSocket(slot)
        }
        modeState.churn.reconnecting = 0
    }
}

/// Churn's figures in the report.
extension BenchmarkReport {
    /// Churn: connections that did all their echoes and closed in the window, per second.
    public var connectionsPerSecond: Double? {
        guard case .churn = configuration.mode, elapsedSeconds > 0 else { return nil }
        return Double(connectionsCompleted) / elapsedSeconds
    }

    /// Churn's JSON values.
    func churnValues(_ requestsPerConnection: Int, into values: inout ModeValues) {
        values.requestsPerConnection = String(requestsPerConnection)
        values.connectionsPerSecond = connectionsPerSecond.map { JSONText.fixed($0, 1) }
        values.connectLatency = LatencySummary(connectLatency).json
        values.firstEchoLatency = LatencySummary(firstEchoLatency).json
    }

    /// Churn's summary lines.
    func churnSummaryLines(_ requestsPerConnection: Int) -> [String] {
        ["  churn        \(requestsPerConnection) request\(requestsPerConnection == 1 ? "" : "s") per connection: "
            + "\(connectionsCompleted) connections done in the window, \(JSONText.fixed(connectionsPerSecond ?? 0, 1))/s; "
            + "\(connectionsOpened) opened in all",
         "  connect µs   " + LatencySummary(connectLatency).text,
         "  1st echo µs  " + LatencySummary(firstEchoLatency).text + " (from the connect's start)"]
    }
}
