#if canImport(Glibc)
import Glibc
#endif

extension ClientLoop {
    /// The traffic phase: every established connection starts (closed loop: issues its first
    /// `depth` requests; stream: fills its window), then events are served until `windowEnd`.
    /// `--rate` admits the arrivals as they fall due, waking for the next one, and after the window
    /// waits (at most the stall threshold) for the requests due in it.
    ///
    /// Requests completed in `[warmupEnd, windowEnd)` are counted and their latencies recorded
    /// (`--rate`: requests due in it). On return the stalled connections are counted and every
    /// socket is closed.
    mutating func run(runStart: UInt64, warmupEnd: UInt64, windowEnd: UInt64) {
        self.warmupEnd = warmupEnd
        self.windowEnd = windowEnd
        startMode(runStart: runStart)
        for slot in 0..<count where connections[slot].state == .established {
            // Its own clock reading: the first sends go out one after another.
            activate(slot, now: ProcessClock.monotonic())
        }
        while active > 0 && !windowClosed {
            let now = ProcessClock.monotonic()
            if now >= windowEnd { break }
            let deadline = beforeWait(now: now)
            // EBADF, EINVAL cannot happen with the loop's own descriptor.
            if wait(until: deadline, now: now, { $0.serve($1, events: $2) }) < 0 { break }
        }
        endMode()
        finish()
    }

    /// Makes connection `slot` active and starts its traffic.
    private mutating func activate(_ slot: Int, now: UInt64) {
        let connection = connections + slot
        connection.pointee.state = .active
        active += 1
        startConnection(slot, connection, now: now)
        send(slot, connection)
    }

    /// Serves one event of connection `slot`.
    @inline(__always)
    mutating func serve(_ slot: Int, events: UInt32) {
        let connection = connections + slot
        switch connection.pointee.state {
        case .active:
            if events & Self.readable != 0 {
                receive(slot, connection)
                guard connection.pointee.state == .active else { return }
            }
            if connection.pointee.wantsWrite {
                if events & Self.writable != 0 { send(slot, connection) }
            } else if connection.pointee.bytesSent < sendLimit(connection) {
                send(slot, connection)
            }
        case .connecting:
            reconnected(slot)
        default:
            return
        }
    }

    /// Counts the stalled connections and closes every socket, then lets the mode settle what is
    /// still under way (churn: its reconnects, so the connections counted are those the server saw).
    private mutating func finish() {
        let now = ProcessClock.monotonic()
        for slot in 0..<count {
            let connection = connections + slot
            guard connection.pointee.state != .connecting else { continue }
            if connection.pointee.state == .active, let oldest = oldestOutstanding(slot, connection),
               now > oldest && now - oldest > stallThreshold {
                tally.errors.stalled &+= 1
            }
            closeSocket(slot)
        }
        settleMode()
        active = 0
    }
}
