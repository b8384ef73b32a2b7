#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

extension Ring {
    /// Queues one multishot accept on `listener`; its completions carry ``UserData/Operation/accept``.
    /// With `direct`, connections go straight into the ring's registered file table.
    func armMultishotAccept(listener: Int32, direct: Bool, enters: inout UInt64) {
        let sqe = submission(enters: &enters)
        if direct {
            io_uring_prep_multishot_accept_direct(sqe, listener, nil, nil, 0)
        } else {
            io_uring_prep_multishot_accept(sqe, listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        }
        sqe.pointee.user_data = UserData(.accept).rawValue
    }

    /// Handles the parts of a multishot accept's completion that every loop shares, and returns the
    /// accepted descriptor (or direct-descriptor index), or nil when there is none.
    ///
    /// When the request has ended (no `IORING_CQE_F_MORE`) and the loop is not stopping, it is
    /// armed again, or, when it ended for lack of descriptors or memory, after a back-off
    /// (``scheduleAcceptRetry(enters:)``), so the loop never spins on a listener it cannot serve.
    /// Those failures are counted in `statistics[.acceptFailures]`.
    func multishotAcceptCompleted(result: Int32, flags: UInt32, listener: Int32, direct: Bool,
                                  stopping: Bool, statistics: inout ServerStatistics) -> Int32? {
        if flags & UInt32(IORING_CQE_F_MORE) == 0 && !stopping {
            switch -result {
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: scheduleAcceptRetry(enters: &statistics[.ioUringEnter])
            case EBADF, EINVAL, ENOTSOCK, EOPNOTSUPP: break  // the listener is gone: nothing to re-arm
            default: armMultishotAccept(listener: listener, direct: direct, enters: &statistics[.ioUringEnter])
            }
        }
        guard result >= 0 else {
            switch -result {
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: statistics[.acceptFailures] &+= 1
            default: break
            }
            return nil
        }
        return result
    }
}
