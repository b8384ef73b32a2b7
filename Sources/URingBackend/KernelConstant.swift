/// io_uring constants newer than the liburing headers this package builds against (2.3), with
/// the values of the kernel's `include/uapi/linux/io_uring.h`.
enum KernelConstant {
    /// `IORING_RECVSEND_BUNDLE`, a send/receive `ioprio` flag (Linux 6.10): one completion may
    /// cover several consecutive buffers of the provided-buffer ring.
    static let recvSendBundle: UInt16 = 1 << 4
    /// `IORING_FEAT_RECVSEND_BUNDLE`, set in `io_uring_params.features` by kernels that have it.
    static let featureRecvSendBundle: UInt32 = 1 << 14
}
