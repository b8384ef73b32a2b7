import CLibUring

extension Ring {
    /// Queues a cancel of the receive in flight on `fd` (matched by its user data); the receive
    /// ends with `ECANCELED`. The cancel's own completion comes only when it fails (`ENOENT`,
    /// `EALREADY`), as ``UserData/Operation/receiveCancel``: the mode then decides what next.
    func cancelReceive(on fd: Int32, enters: inout UInt64) {
        let sqe = submission(enters: &enters)
        io_uring_prep_cancel64(sqe, UserData(.recv, fd: fd).rawValue, 0)
        sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
        sqe.pointee.user_data = UserData(.receiveCancel, fd: fd).rawValue
    }
}
