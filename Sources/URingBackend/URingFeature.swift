/// An io_uring feature the project knows: what it is called, the kernel release that brought it,
/// and how a missing one is named in an error.
///
/// The list is the feature table of `echo --features`; ``URingFeatures`` says which of them the
/// running kernel has, probed by trying where a probe exists.
public enum URingFeature: String, CaseIterable, Sendable, Comparable {
    case fastPoll = "fast-poll"
    case provideBuffers = "provide-buffers"
    case sqpoll = "sqpoll"
    case submitAll = "submit-all"
    case coopTaskrun = "coop-taskrun"
    case bufferRing = "buffer-ring"
    case multishotAccept = "multishot-accept"
    case directDescriptors = "direct-descriptors"
    case singleIssuer = "single-issuer"
    case multishotReceive = "multishot-receive"
    case zeroCopySend = "zero-copy-send"
    case deferTaskrun = "defer-taskrun"
    case receiveBundles = "receive-bundles"
    case incrementalBuffers = "incremental-buffers"
    /// A direct descriptor's file is let go of when it is closed. Before, the kernel lets go of
    /// closed ones in the order they were closed, each only after every request that was issued on
    /// any direct descriptor before it has completed: one idle connection's receive then keeps
    /// every connection closed after it open (no FIN reaches its peer) for as long as it lasts.
    case directDescriptorRelease = "direct-descriptor-release"

    /// The stable name, as in `echo --features --json`.
    public var name: String { rawValue }

    /// The mainline release that brought it (for `sqpoll`, unprivileged use).
    public var since: KernelVersion {
        switch self {
        case .fastPoll, .provideBuffers: KernelVersion(5, 7)
        case .sqpoll: KernelVersion(5, 13)
        case .submitAll: KernelVersion(5, 18)
        case .coopTaskrun, .bufferRing, .multishotAccept, .directDescriptors: KernelVersion(5, 19)
        case .singleIssuer, .multishotReceive, .zeroCopySend: KernelVersion(6, 0)
        case .deferTaskrun: KernelVersion(6, 1)
        case .receiveBundles: KernelVersion(6, 10)
        case .incrementalBuffers: KernelVersion(6, 12)
        case .directDescriptorRelease: KernelVersion(6, 13)
        }
    }

    /// What a person reads: a few words.
    public var title: String {
        switch self {
        case .fastPoll: "fast poll"
        case .provideBuffers: "provided buffers"
        case .sqpoll: "submission queue polling"
        case .submitAll: "submit all"
        case .coopTaskrun: "cooperative task running"
        case .bufferRing: "provided-buffer rings"
        case .multishotAccept: "multishot accept"
        case .directDescriptors: "direct descriptors"
        case .directDescriptorRelease: "release of closed direct descriptors at once"
        case .singleIssuer: "single issuer"
        case .multishotReceive: "multishot receive"
        case .zeroCopySend: "zero-copy send"
        case .deferTaskrun: "deferred task running"
        case .receiveBundles: "receive bundles"
        case .incrementalBuffers: "incremental buffer consumption"
        }
    }

    /// The kernel's own name for it, to look up.
    public var kernelName: String {
        switch self {
        case .fastPoll: "IORING_FEAT_FAST_POLL"
        case .provideBuffers: "IORING_OP_PROVIDE_BUFFERS"
        case .sqpoll: "IORING_SETUP_SQPOLL"
        case .submitAll: "IORING_SETUP_SUBMIT_ALL"
        case .coopTaskrun: "IORING_SETUP_COOP_TASKRUN"
        case .bufferRing: "IORING_REGISTER_PBUF_RING"
        case .multishotAccept: "IORING_ACCEPT_MULTISHOT"
        case .directDescriptors: "IORING_RSRC_REGISTER_SPARSE"
        case .directDescriptorRelease: "per-file io_rsrc_node"
        case .singleIssuer: "IORING_SETUP_SINGLE_ISSUER"
        case .multishotReceive: "IORING_RECV_MULTISHOT"
        case .zeroCopySend: "IORING_OP_SEND_ZC"
        case .deferTaskrun: "IORING_SETUP_DEFER_TASKRUN"
        case .receiveBundles: "IORING_FEAT_RECVSEND_BUNDLE"
        case .incrementalBuffers: "IOU_PBUF_RING_INC"
        }
    }

    /// The feature as an error names it: "receive bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)".
    public var requirement: String {
        "\(title) (\(kernelName), Linux \(since)\(self == .sqpoll ? " for unprivileged use" : ""))"
    }

    /// The flag that runs without it, where one does.
    var hint: String? {
        switch self {
        case .incrementalBuffers: "--no-incremental-buffers runs without it"
        case .deferTaskrun, .singleIssuer: "--no-defer-taskrun runs without it"
        case .multishotReceive, .multishotAccept, .bufferRing: "--uring-mode legacy runs without it"
        case .directDescriptors, .directDescriptorRelease: "without --fixed-files, connections use ordinary descriptors"
        default: nil
        }
    }

    public static func < (a: URingFeature, b: URingFeature) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
