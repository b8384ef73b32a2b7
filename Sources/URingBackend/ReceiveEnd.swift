#if canImport(Glibc)
import Glibc
#endif

/// Why a connection's multishot receive ended: its last completion (the one without
/// `IORING_CQE_F_MORE`), read once for the multishot and bundle connections alike.
enum ReceiveEnd: Equatable {
    /// The peer closed its side (result 0).
    case endOfStream
    /// The buffer ring was empty (`ENOBUFS`).
    case noBuffers
    /// Cancelled, for back-pressure or closing: `ECANCELED`.
    case cancelled
    /// Interrupted before any data (`EINTR`, `EAGAIN`): nothing is wrong, so it is armed again.
    case interrupted
    /// The connection broke: any other error.
    case failed
    /// It ended with data: the kernel stops a multishot request it has no CQ room for.
    case withData

    /// Classifies a final receive completion's `result`.
    @inline(__always)
    init(result: Int32) {
        if result > 0 {
            self = .withData
        } else if result == 0 {
            self = .endOfStream
        } else {
            switch -result {
            case ENOBUFS: self = .noBuffers
            case ECANCELED: self = .cancelled
            case EINTR, EAGAIN: self = .interrupted
            default: self = .failed
            }
        }
    }
}

/// What the loop does after a connection's multishot receive has ended (a completion without
/// `IORING_CQE_F_MORE`), as decided by the connection's state.
enum ReceiveEndAction: Equatable {
    /// Nothing now: the peer closed, the receive was cancelled, or it resumes later.
    case nothing
    /// Arm the receive again.
    case rearm
    /// Queue the connection until buffers return to the shared ring.
    case starve
    /// The connection is broken: begin closing it.
    case close
}
