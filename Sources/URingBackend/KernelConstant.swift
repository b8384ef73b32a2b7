/// io_uring constants newer than the liburing headers this package builds against (2.3), with
/// the values of the kernel's `include/uapi/linux/io_uring.h`.
enum KernelConstant {
    /// `IORING_RECVSEND_BUNDLE`, a send/receive `ioprio` flag (Linux 6.10): one completion may
    /// cover several consecutive buffers of the provided-buffer ring.
    static let recvSendBundle: UInt16 = 1 << 4
    /// `IORING_FEAT_RECVSEND_BUNDLE`, set in `io_uring_params.features` by kernels that have it.
    static let featureRecvSendBundle: UInt32 = 1 << 14
    /// `IOU_PBUF_RING_INC`, a provided-buffer ring registration flag (Linux 6.12): a receive takes
    /// only the bytes it needs from the head buffer, and the next receive continues in it. liburing
    /// 2.3's `io_uring_buf_reg` calls the flags field `pad`.
    static let bufferRingIncremental: UInt16 = 2
    /// `IORING_CQE_F_BUF_MORE`, a completion flag (Linux 6.12): the kernel keeps using the buffer
    /// the completion names (an incremental ring's partly filled head), so it is not ours yet.
    static let completionBufferMore: UInt32 = 1 << 4
}
