import Backend
import CLinux

#if canImport(Glibc)
import Glibc
#endif

extension EpollLoop {
    /// Accepts every waiting connection, until `accept4` reports `EAGAIN`.
    ///
    /// Out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), the failure is
    /// counted and the listener leaves the epoll set: a level-triggered listener with a waiting
    /// connection that cannot be accepted would otherwise wake every wait at once and spin. It comes
    /// back when a connection closes or after ``acceptRetryDelay``.
    ///
    /// - Throws: ``EchoError/system(_:errno:)`` for errors that mean the listener itself is broken.
    mutating func acceptConnections() throws(EchoError) {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        while true {
            let descriptor = clinux_accept4(listener, nil, nil, flags)
            let code = descriptor < 0 ? errno : 0
            statistics[.accept] += 1
            if descriptor >= 0 {
                guard try adopt(descriptor) else { return }
                continue
            }
            switch code {
            case EAGAIN:  // also EWOULDBLOCK: the backlog is empty
                return
            case EINTR, ECONNABORTED:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                statistics[.acceptFailures] += 1
                try pauseAccepting()
                return
            case EPROTO, EPERM, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP,
                 ENETUNREACH, ETIMEDOUT:
                // accept(2): errors already pending on the new connection, which is gone; the
                // listener is fine, so go on with the next one.
                continue
            default:
                throw .system("accept4", errno: code)
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
            return true
        }
        connections.release(descriptor)
        _ = Glibc.close(descriptor)
        statistics[.close] += 1
        switch code {
        case ENOMEM, ENOSPC:  // ENOSPC: the user's epoll watch limit (max_user_watches)
            statistics[.acceptFailures] += 1
            try pauseAccepting()
            return false
        default:
            throw .system("epoll_ctl(EPOLL_CTL_ADD, a connection)", errno: code)
        }
    }

    /// Takes the listener out of the epoll set until a connection closes or ``acceptRetryDelay`` milliseconds pass.
    private mutating func pauseAccepting() throws(EchoError) {
        if case .watched = listenerState {
            let code = remove(listener)
            guard code == 0 else { throw .system("epoll_ctl(EPOLL_CTL_DEL, the listener)", errno: code) }
        }
        listenerState = .paused(until: Self.monotonicDeadline(after: Self.acceptRetryDelay))
    }

    /// Puts the listener back in the epoll set; if the set is still out of room, tries again later.
    mutating func resumeAccepting() throws(EchoError) {
        let code = control(EPOLL_CTL_ADD, listener, interest: .read, token: .fixed(listener))
        switch code {
        case 0:
            listenerState = .watched
        case ENOMEM, ENOSPC:
            listenerState = .paused(until: Self.monotonicDeadline(after: Self.acceptRetryDelay))
        default:
            throw .system("epoll_ctl(EPOLL_CTL_ADD, the listener)", errno: code)
        }
    }
}
