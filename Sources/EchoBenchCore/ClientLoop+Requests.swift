import CLinux

#if canImport(Glibc)
import Glibc
#endif

extension ClientLoop {
    /// Which counter a failure goes to.
    enum Failure {
        case mismatch, reset, eof
    }

    /// The closed loop: every established connection sends its first message at once, then each
    /// echo fully received and verified starts the connection's next request, until `windowEnd`.
    ///
    /// Requests completed in `[warmupEnd, windowEnd)` are counted and their latencies recorded.
    /// On return the stalled connections are counted and every socket is closed.
    mutating func run(warmupEnd: UInt64, windowEnd: UInt64) {
        self.warmupEnd = warmupEnd
        self.windowEnd = windowEnd
        for slot in 0..<count where connections[slot].state == .established {
            connections[slot].state = .active
            active += 1
            // Its own clock reading: the first sends go out one after another.
            begin(slot, now: ProcessClock.monotonic())
        }
        while active > 0 && !windowClosed {
            let now = ProcessClock.monotonic()
            if now >= windowEnd { break }
            let ready = epoll_wait(epollDescriptor, events, Int32(Self.maxEvents),
                                   ProcessClock.milliseconds(from: now, to: windowEnd))
            if ready < 0 {
                if errno == EINTR { continue }
                break  // EBADF, EINVAL: cannot happen with the loop's own descriptor
            }
            var index = 0
            while index < Int(ready) {
                let event = events[index]
                serve(Int(truncatingIfNeeded: event.data.u64), events: event.events)
                index += 1
            }
        }
        finish()
    }

    /// Counts the stalled connections and closes every socket.
    private mutating func finish() {
        for slot in 0..<count {
            let connection = connections + slot
            if connection.pointee.state == .active && connection.pointee.started < windowEnd
                && windowEnd - connection.pointee.started > stallThreshold {
                errors.stalled &+= 1
            }
            if connection.pointee.descriptor >= 0 {
                _ = Glibc.close(connection.pointee.descriptor)
                connection.pointee.descriptor = -1
            }
        }
        active = 0
    }

    /// Serves one event of connection `slot`.
    @inline(__always)
    private mutating func serve(_ slot: Int, events: UInt32) {
        let connection = connections + slot
        guard connection.pointee.state == .active else { return }
        if events & Self.readable != 0 {
            receive(slot, connection)
        }
        if connection.pointee.state == .active && connection.pointee.wantsWrite && events & Self.writable != 0 {
            send(slot, connection)
        }
    }

    /// Starts connection `slot`'s next request at `now`.
    @inline(__always)
    private mutating func begin(_ slot: Int, now: UInt64) {
        let connection = connections + slot
        connection.pointee.sequence &+= 1
        connection.pointee.seed = Payload.seed(connection: connection.pointee.identifier,
                                               sequence: connection.pointee.sequence)
        connection.pointee.sent = 0
        connection.pointee.received = 0
        connection.pointee.started = now
        send(slot, connection)
    }

    /// Sends what is left of the current message, one chunk at a time, until the socket takes
    /// no more (then waits for `EPOLLOUT`) or all of it is out.
    @inline(__always)
    private mutating func send(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        let descriptor = connection.pointee.descriptor
        while connection.pointee.sent < length {
            let offset = connection.pointee.sent
            let size = min(length - offset, chunk)
            let head = offset & 7
            Payload.fill(sendBuffer, seed: connection.pointee.seed, firstWord: offset >> 3, byteCount: head + size)
            let sent = Glibc.send(descriptor, sendBuffer + head, size, Self.sendFlags)
            if sent > 0 {
                connection.pointee.sent = offset + sent
                if sent < size { break }  // the send buffer is full: a retry now would see EAGAIN
                continue
            }
            let code = sent < 0 ? errno : EAGAIN
            if code == EINTR { continue }
            if code == EAGAIN { break }
            fail(slot, .reset)  // EPIPE, ECONNRESET, …
            return
        }
        let wantsWrite = connection.pointee.sent < length
        if wantsWrite != connection.pointee.wantsWrite {
            connection.pointee.wantsWrite = wantsWrite
            let interest = EPOLLIN.rawValue | (wantsWrite ? EPOLLOUT.rawValue : 0)
            if control(EPOLL_CTL_MOD, slot, events: interest) != 0 { fail(slot, .reset) }
        }
    }

    /// Reads the echo, verifying every byte against the message sent. A read shorter than asked
    /// means the socket is drained for now; the next `EPOLLIN` brings the rest.
    @inline(__always)
    private mutating func receive(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        let descriptor = connection.pointee.descriptor
        while true {
            let offset = connection.pointee.received
            // Never more than the echo still owed: extra bytes would be the next message's start.
            let wanted = min(length - offset, chunk)
            let count = Glibc.read(descriptor, receiveBuffer, wanted)
            if count > 0 {
                let head = offset & 7
                Payload.fill(expectedBuffer, seed: connection.pointee.seed, firstWord: offset >> 3, byteCount: head + count)
                if memcmp(receiveBuffer, expectedBuffer + head, count) != 0 {
                    fail(slot, .mismatch)
                    return
                }
                connection.pointee.received = offset + count
                if offset + count == length {
                    complete(slot, connection)
                    return
                }
                if count < wanted { return }
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

    /// A whole echo arrived and matched: counts it if it falls in the window and starts the next
    /// request, or retires the connection once the window has closed.
    @inline(__always)
    private mutating func complete(_ slot: Int, _ connection: UnsafeMutablePointer<ClientConnection>) {
        let now = ProcessClock.monotonic()
        if now >= windowEnd {
            connection.pointee.state = .finished
            active -= 1
            windowClosed = true
            return
        }
        if now >= warmupEnd {
            requests &+= 1
            latency.record(min(now &- connection.pointee.started, Self.latencyLimit))
        }
        begin(slot, now: now)
    }

    /// Counts `failure`, closes the connection and retires it: it is not reconnected.
    private mutating func fail(_ slot: Int, _ failure: Failure) {
        switch failure {
        case .mismatch: errors.mismatch &+= 1
        case .reset: errors.reset &+= 1
        case .eof: errors.eof &+= 1
        }
        if connections[slot].state == .active { active -= 1 }
        closeSocket(slot)
    }
}
