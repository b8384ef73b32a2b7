#if canImport(Glibc)
import Glibc
#endif

/// What a failed `accept` means for the loop, and how long it backs off: the one policy every
/// backend follows.
public enum AcceptFailure: Equatable, Sendable {
    /// The backlog is empty (`EAGAIN`): wait for the next readiness.
    case backlogEmpty
    /// That connection is gone (reset in the backlog, `ECONNABORTED`, a network error pending on
    /// it) or a signal interrupted the call: accept the next one at once.
    case transient
    /// Out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): count it in
    /// ``ServerStatistics/Counter/acceptFailures``, keep serving the open connections, and accept
    /// again after ``backoff`` (or, where the loop can tell, as soon as a connection closes), so
    /// the loop never spins on a listener it cannot serve.
    case exhausted
    /// The listener itself is unusable (`EBADF`, `EINVAL`, `ENOTSOCK`, `EOPNOTSUPP`, `EFAULT`):
    /// the loop ends with this error, unless it is stopping (a stop shuts the blocking backend's
    /// listener down, and `accept` then fails with `EINVAL`).
    case listenerBroken

    /// How long accepting pauses after ``exhausted``: short enough that a freed descriptor is
    /// used soon, long enough that a full table costs nothing.
    public static let backoffNanoseconds: UInt64 = 50_000_000

    /// The kind of failure `code` (the error number of `accept`, `accept4` or an accept completion) is.
    public init(code: Int32) {
        switch code {
        case EAGAIN: self = .backlogEmpty
        case EMFILE, ENFILE, ENOBUFS, ENOMEM: self = .exhausted
        case EBADF, EINVAL, ENOTSOCK, EOPNOTSUPP, EFAULT: self = .listenerBroken
        default: self = .transient
        }
    }
}
