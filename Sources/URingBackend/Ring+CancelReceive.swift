import CLibUring

extension Ring {
    /// Queues a cancel of the receive in flight on `fd` (matched by its user data); the receive
    /// ends with `ECANCELED`. The cancel's own completion is skipped on success and ignored otherwise.
    func cancelReceive(on fd: Int32, enters: inout UInt64) {
        let sqe = submission(enters: &enters)
        io_uring_prep_cancel64(sqe, UserData(.recv, fd: fd).rawValue, 0)
        sqe.pointee.flags |= UInt8(1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
        sqe.pointee.user_data = UserData(.ignored, fd: fd).rawValue
    }
}
