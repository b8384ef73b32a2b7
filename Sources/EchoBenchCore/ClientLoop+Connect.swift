import CLinux

#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

extension ClientLoop {
    // MARK: Connect phase

    /// Connects every connection of the share, at most ``connectsInFlight`` at a time.
    ///
    /// Gives up on the connects still pending when none has completed for `timeout` nanoseconds,
    /// and stops starting new ones once the server refuses or the process runs out of descriptors,
    /// ports or memory. Every connection not established is counted in ``errors``' `connect`.
    mutating func connectAll(timeout: UInt64) {
        var next = 0
        var pending = 0
        var stopStarting = false
        var deadline = ProcessClock.monotonic() &+ timeout
        while true {
            while !stopStarting && pending < Self.connectsInFlight && next < count {
                let code = startConnect(next)
                next += 1
                if code == EINPROGRESS { pending += 1 } else if code != 0 && Self.endsConnecting(code) { stopStarting = true }
            }
            if pending == 0 && (stopStarting || next == count) { break }
            let now = ProcessClock.monotonic()
            if now >= deadline {
                abandonPendingConnects(next: next, code: ETIMEDOUT)
                break
            }
            let ready = wait(until: deadline, now: now) { loop, slot, _ in
                guard loop.connections[slot].state == .connecting else { return }
                let code = loop.finishConnect(slot)
                pending -= 1
                deadline = ProcessClock.monotonic() &+ timeout
                if code != 0 && Self.endsConnecting(code) { stopStarting = true }
            }
            if ready < 0 {
                abandonPendingConnects(next: next, code: SystemCall.lastError)
                break
            }
        }
        // Connections never tried count as failed connects too: connect = asked - established.
        tally.errors.connect &+= UInt64(count - next)
    }

    /// Errors after which starting more connects is pointless.
    static func endsConnecting(_ code: Int32) -> Bool {
        code == ECONNREFUSED || code == EMFILE || code == ENFILE || code == EADDRNOTAVAIL
            || code == ENOBUFS || code == ENOMEM || code == ENETUNREACH || code == EHOSTUNREACH
    }

    /// Starts connection `slot`'s connect in the connect phase. Returns 0 when it connected at
    /// once, `EINPROGRESS` when it is under way, or the `errno` it failed with (counted).
    private mutating func startConnect(_ slot: Int) -> Int32 {
        let code = openConnection(slot)
        if code == 0 {
            connections[slot].state = .established
            tally.established += 1
        } else if code != EINPROGRESS {
            failConnect(slot, code)
        }
        return code
    }

    /// Reads the outcome of connection `slot`'s connect. Returns 0 or the `errno` it failed with.
    private mutating func finishConnect(_ slot: Int) -> Int32 {
        let code = connectOutcome(slot)
        guard code == 0 else {
            failConnect(slot, code)
            return code
        }
        connections[slot].state = .established
        tally.established += 1
        return 0
    }

    /// Counts a failed connect and closes its socket.
    private mutating func failConnect(_ slot: Int, _ code: Int32) {
        tally.errors.connect &+= 1
        if firstConnectError == 0 { firstConnectError = code }
        closeSocket(slot)
    }

    /// Gives up every connect still under way among the first `next` connections.
    private mutating func abandonPendingConnects(next: Int, code: Int32) {
        for slot in 0..<next where connections[slot].state == .connecting {
            failConnect(slot, code)
        }
    }

    // MARK: Shared with reconnects

    /// Opens connection `slot`'s socket (bound to its source address when the loop spreads them)
    /// and starts its connect. Returns 0 when it connected at once (registered for reading),
    /// `EINPROGRESS` when it is under way (state `connecting`, registered for `EPOLLOUT`), or the
    /// `errno` it failed with (the socket stays in the slot for the caller to close).
    mutating func openConnection(_ slot: Int) -> Int32 {
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let opened = SystemCall.outcome { socket(address.family, flags, 0) }
        guard !opened.failed else { return opened.error }
        let descriptor = opened.value
        let connection = connections + slot
        connection.pointee.descriptor = descriptor
        var enabled: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &enabled, socklen_t(MemoryLayout<Int32>.size))
        if perSource > 0 {
            let code = SocketAddress.bindLoopbackSource(descriptor, index: Int(connection.pointee.identifier) / perSource)
            if code != 0 { return code }
        }
        let code = address.connect(descriptor)
        if code == 0 { return control(EPOLL_CTL_ADD, slot, events: EPOLLIN.rawValue) }
        guard code == EINPROGRESS || code == EINTR else { return code }
        connection.pointee.state = .connecting
        let registered = control(EPOLL_CTL_ADD, slot, events: EPOLLOUT.rawValue)
        return registered == 0 ? EINPROGRESS : registered
    }

    /// The outcome of connection `slot`'s non-blocking connect, once `EPOLLOUT` came: 0 (then it
    /// is registered for reading instead) or the `errno` it failed with.
    mutating func connectOutcome(_ slot: Int) -> Int32 {
        var code: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        let asked = SystemCall.outcome { getsockopt(connections[slot].descriptor, SOL_SOCKET, SO_ERROR, &code, &size) }
        if asked.failed { code = asked.error }
        guard code == 0 else { return code }
        return control(EPOLL_CTL_MOD, slot, events: EPOLLIN.rawValue)
    }
}
