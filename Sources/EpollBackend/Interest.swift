import CLinux

/// What a registered descriptor waits for.
///
/// The `epoll` event bits are built in one place, ``EpollLoop/events(for:)``, so a trigger mode
/// (`EPOLLET`) can be added there without touching the code that switches interest.
enum Interest {
    /// Readable: the listener, the stop signal, and connections with nothing pending.
    case read
    /// Writable: connections holding bytes their peer has not taken yet.
    case write

    /// The `epoll` bits for this interest, before any trigger flag.
    @inline(__always)
    var epollEvents: UInt32 {
        switch self {
        case .read: return EPOLLIN.rawValue
        case .write: return EPOLLOUT.rawValue
        }
    }

    /// `EPOLLERR | EPOLLHUP`: reported whatever the interest, and meaning the next call on the
    /// socket will not block (it returns the error, or the end of the stream).
    static let errorOrHangUp: UInt32 = EPOLLERR.rawValue | EPOLLHUP.rawValue
}
