import Backend
import CLinux

#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

extension EpollLoop {
    /// Accepts every waiting connection, until `accept4` reports `EAGAIN` or the connection cap is
    /// reached.
    ///
    /// Failures follow ``AcceptFailure``. Out of descriptors or memory, pipes no connection holds
    /// (`--splice`) are closed and the accept tried again; failing still, the failure is counted and
    /// the listener leaves the epoll set: a level-triggered listener with a waiting connection that
    /// cannot be accepted would otherwise wake every wait at once and spin. It comes back when a
    /// connection closes or after ``AcceptFailure/backoffNanoseconds``. At the cap (`--max-connections`,
    /// pausing) it leaves the set the same way and comes back once a connection closes.
    ///
    /// - Throws: ``EchoError`` `.system` for errors that mean the listener itself is broken.
    mutating func acceptConnections() throws(EchoError) {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        while true {
            if connections.openCount >= maxConnections && overLimit == .pause {
                try pauseAccepting(until: .distantFuture)
                statistics[.acceptPauses] &+= 1
                return
            }
            let outcome = SystemCall.outcome { clinux_accept4(listener, nil, nil, flags) }
            let descriptor = outcome.value
            statistics[.accept] += 1
            if descriptor >= 0 {
                if connections.openCount >= maxConnections {
                    // --over-limit close: in and out at once, counted.
                    _ = Glibc.close(descriptor)
                    statistics[.close] += 1
                    statistics[.acceptsRefused] &+= 1
                    continue
                }
                guard try adopt(descriptor) else { return }
                continue
            }
            switch AcceptFailure(code: outcome.error) {
            case .backlogEmpty:
                return
            case .transient:
                continue
            case .exhausted:
                // Idle pipes hold descriptors a connection can use: closed, accepting goes on.
                if pipes.idleCount > 0 && closeIdlePipes() { continue }
                statistics[.acceptFailures] += 1
                try pauseAccepting(until: MonotonicTime.now().adding(nanoseconds: AcceptFailure.backoffNanoseconds))
                return
            case .listenerBroken:
                throw SystemCall.failure("accept4", code: outcome.error)
            }
        }
    }

    /// Sets up a connection just accepted: a table slot and registration for reading
    /// (`TCP_NODELAY` comes from the listener, see `ListeningSocket`).
    ///
    /// Returns `false` when accepting must pause because the epoll set is out of room.
    private mutating func adopt(_ descriptor: Int32) throws(EchoError) -> Bool {
        let token = connections.open(descriptor)
        let code = control(EPOLL_CTL_ADD, descriptor, interest: .read, token: token)
        if code == 0 {
            statistics[.connectionsAccepted] += 1
            idle.opened(descriptor)
            return true
        }
        connections.release(descriptor)
        _ = Glibc.close(descriptor)
        statistics[.close] += 1
        switch code {
        case ENOMEM, ENOSPC:  // ENOSPC: the user's epoll watch limit (max_user_watches)
            statistics[.acceptFailures] += 1
            try pauseAccepting(until: MonotonicTime.now().adding(nanoseconds: AcceptFailure.backoffNanoseconds))
            return false
        default:
            throw SystemCall.failure("epoll_ctl(EPOLL_CTL_ADD, a connection)", code: code)
        }
    }

    /// Takes the listener out of the epoll set until a connection closes or `deadline` passes.
    private mutating func pauseAccepting(until deadline: MonotonicTime) throws(EchoError) {
        if case .watched = listenerState {
            let code = remove(listener)
            guard code == 0 else { throw SystemCall.failure("epoll_ctl(EPOLL_CTL_DEL, the listener)", code: code) }
        }
        listenerState = .paused(until: deadline)
    }

    /// Puts the listener back in the epoll set once a connection closed (below the cap) or the
    /// back-off has passed; if the set is still out of room, tries again later.
    mutating func resumeAcceptingIfDue(now: MonotonicTime) throws(EchoError) {
        guard case .paused(let until) = listenerState, closedThisTurn || now >= until else { return }
        guard connections.openCount < maxConnections || overLimit == .close else { return }
        let code = control(EPOLL_CTL_ADD, listener, interest: .read, token: .fixed(listener))
        switch code {
        case 0:
            listenerState = .watched
        case ENOMEM, ENOSPC:
            listenerState = .paused(until: now.adding(nanoseconds: AcceptFailure.backoffNanoseconds))
        default:
            throw SystemCall.failure("epoll_ctl(EPOLL_CTL_ADD, the listener)", code: code)
        }
    }
}
