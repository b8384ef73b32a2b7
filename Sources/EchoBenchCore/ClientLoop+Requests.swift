import CLinux
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// The per-request path every mode shares: issuing, sending, reading, verifying, completing.
///
/// A connection's bytes form one stream (see ``ClientConnection``): a send moves bytes
/// `[bytesSent, sendLimit)` in chunks, however many messages they span; a read takes at most
/// what is owed back and verifies it against the regenerated pattern. Modes differ only in when
/// requests are issued and what a completed message does (``BenchmarkMode``'s switches).
extension ClientLoop {
    /// Which counter a failure goes to.
    enum Failure {
        case mismatch, reset, eof
    }

    /// How far a closed loop may send connection `connection`'s byte stream: to the end of the
    /// requests issued.
    @inline(__always)
    func closedLoopSendLimit(_ connection: UnsafeMutablePointer<ClientConnection>) -> UInt64 {
        connection.pointee.issued &* messageLength
    }

    /// Issues connection `slot`'s next request, due at `time` (its latency counts from then).
    @inline(__always)
    func issue(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>, at time: UInt64) {
        times[ring(slot, connection.pointee.issued)] = time
        connection.pointee.issued &+= 1
    }

    /// Sends connection `slot`'s stream up to its ``sendLimit(_:)``, one chunk at a time, until the
    /// socket takes no more (then waits for `EPOLLOUT`) or the limit is reached.
    @inline(__always)
    mutating func send(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        let descriptor = connection.pointee.descriptor
        let limit = sendLimit(connection)
        var blocked = false
        while connection.pointee.bytesSent < limit {
            let from = connection.pointee.bytesSent
            let size = Int(truncatingIfNeeded: min(limit &- from, UInt64(chunk)))
            let head = Payload.fill(sendBuffer, connection: connection.pointee.identifier, from: from,
                                    count: size, length: length)
            let sent = Glibc.send(descriptor, sendBuffer + head, size, Self.sendFlags)
            if sent > 0 {
                connection.pointee.bytesSent = from &+ UInt64(sent)
                didSend(slot, connection)
                if sent < size {
                    blocked = true  // the send buffer is full: a retry now would see EAGAIN
                    break
                }
                continue
            }
            let code = sent < 0 ? errno : EAGAIN
            if code == EINTR { continue }
            if code == EAGAIN {
                blocked = true
                break
            }
            fail(slot, .reset)  // EPIPE, ECONNRESET, …
            return
        }
        if blocked != connection.pointee.wantsWrite {
            connection.pointee.wantsWrite = blocked
            let interest = EPOLLIN.rawValue | (blocked ? EPOLLOUT.rawValue : 0)
            if control(EPOLL_CTL_MOD, slot, events: interest) != 0 { fail(slot, .reset) }
        }
    }

    /// Reads what is owed, verifying every byte against the stream sent. A read shorter than asked
    /// means the socket is drained for now; the next `EPOLLIN` brings the rest.
    @inline(__always)
    mutating func receive(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        let descriptor = connection.pointee.descriptor
        while true {
            let from = connection.pointee.bytesReceived
            let owed = connection.pointee.bytesSent &- from
            // Never more than is owed: more would be a later message's start. With nothing owed,
            // one byte: whatever comes was never asked for (or the read sees the end of the stream).
            let wanted = owed == 0 ? 1 : Int(truncatingIfNeeded: min(owed, UInt64(chunk)))
            let count = Glibc.read(descriptor, receiveBuffer, wanted)
            if count > 0 {
                let head = Payload.fill(expectedBuffer, connection: connection.pointee.identifier, from: from,
                                        count: count, length: length)
                if owed == 0 || memcmp(receiveBuffer, expectedBuffer + head, count) != 0 {
                    fail(slot, .mismatch)
                    return
                }
                let to = from &+ UInt64(count)
                connection.pointee.bytesReceived = to
                guard received(slot, connection, from: from, to: to) else { return }
                if count < wanted || to == connection.pointee.bytesSent { return }
                continue
            }
            if count == 0 {
                fail(slot, .eof)
                return
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN { return }
            fail(slot, .reset)
            return
        }
    }

    /// Bytes `[from, to)` of connection `slot`'s stream came back and matched: completes the
    /// messages they end (see ``echoed(_:_:issuedAt:now:)``). Returns false when the connection
    /// stops reading.
    @inline(__always)
    mutating func completeMessages(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>,
                                   from: UInt64, to: UInt64) -> Bool {
        var message = from / messageLength
        let end = to / messageLength
        guard message < end else { return true }
        let now = ProcessClock.monotonic()
        while message < end {
            guard echoed(slot, connection, issuedAt: times[ring(slot, message)], now: now) else { return false }
            message &+= 1
        }
        return true
    }

    /// A closed loop's echo of a request issued at `issuedAt` completed at `now`: records its
    /// latency if it counts, or retires the connection once the window has closed. Returns false
    /// when the connection stops reading; the mode then issues what follows.
    @inline(__always)
    mutating func counted(_ connection: UnsafeMutablePointer<ClientConnection>, issuedAt: UInt64, now: UInt64) -> Bool {
        if now >= windowEnd {
            connection.pointee.state = .finished
            active -= 1
            windowClosed = true
            return false
        }
        if now >= warmupEnd {
            tally.requests &+= 1
            Self.record(&tally.latency, from: issuedAt, to: now)
        }
        return true
    }

    /// When the oldest request connection `slot` is waiting for was issued, or nil when nothing
    /// is in flight.
    func oldestRequest(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) -> UInt64? {
        guard connection.pointee.bytesSent > connection.pointee.bytesReceived else { return nil }
        return times[ring(slot, connection.pointee.bytesReceived / messageLength)]
    }

    /// Records `to - from` nanoseconds (0 if the clock has not moved), at most ``latencyLimit``.
    @inline(__always)
    static func record(_ histogram: inout Histogram<UInt64>, from: UInt64, to: UInt64) {
        histogram.record(to > from ? min(to - from, Self.latencyLimit) : 0)
    }

    /// Counts `failure`, closes the connection and retires it: it is not reconnected.
    mutating func fail(_ slot: Int, _ failure: Failure) {
        switch failure {
        case .mismatch: tally.errors.mismatch &+= 1
        case .reset: tally.errors.reset &+= 1
        case .eof: tally.errors.eof &+= 1
        }
        if connections[slot].state == .active {
            active -= 1
            failed(slot)
        }
        closeSocket(slot)
    }
}
