import Testing
import URingBackend

/// The kernels this machine cannot boot, as the io_uring probe would find them: each kernel's
/// features, written out from the kernel's history and liburing's man pages (not derived from
/// ``URingFeature/since``), and the design the negotiation must pick there. The negotiation tests
/// check the design; the configuration tests parse every configuration on each kernel.
enum KernelHistory {
    /// A kernel as the probe would find it.
    struct Kernel: Sendable, CustomTestStringConvertible {
        let release: String
        let features: Set<URingFeature>
        /// The design the negotiation must pick, and the features it must name as left out.
        let design: String
        let leftOut: [URingFeature]
        var testDescription: String { release }
        var probed: URingFeatures { URingFeatures(release: release, available: features) }
    }

    /// 5.10 (Debian 11, Amazon Linux 2's 5.10): fast poll and provided buffers; SQPOLL still
    /// needs CAP_SYS_ADMIN there.
    static let linux5_10: Set<URingFeature> = [.fastPoll, .provideBuffers]
    /// 5.15 (Ubuntu 22.04): unprivileged SQPOLL came in 5.13.
    static let linux5_15 = linux5_10.union([.sqpoll])
    /// 5.19: SUBMIT_ALL (5.18), COOP_TASKRUN, buffer rings, multishot accept, sparse file tables.
    static let linux5_19 = linux5_15.union([.submitAll, .coopTaskrun, .bufferRing, .multishotAccept,
                                            .directDescriptors])
    /// 6.0: SINGLE_ISSUER, multishot receive, zero-copy send.
    static let linux6_0 = linux5_19.union([.singleIssuer, .multishotReceive, .zeroCopySend])
    /// 6.1 (Debian 12, Amazon Linux 2023), and unchanged for us up to 6.9 (6.8: Ubuntu 24.04).
    static let linux6_1 = linux6_0.union([.deferTaskrun])
    /// 6.10 brought bundles, 6.12 (Debian 13) incremental buffer consumption.
    static let linux6_12 = linux6_1.union([.receiveBundles, .incrementalBuffers])
    /// 6.13 gave each registered file its own resource node: a closed direct descriptor's file is
    /// let go of at once, not after every older request on the table (io_uring/rsrc.c).
    static let linux6_13 = linux6_12.union([.directDescriptorRelease])

    static let kernels: [Kernel] = [
        Kernel(release: "5.10.0-30-amd64", features: linux5_10, design: "legacy",
               leftOut: [.multishotReceive, .deferTaskrun, .incrementalBuffers]),
        Kernel(release: "5.15.0-126-generic", features: linux5_15, design: "legacy",
               leftOut: [.multishotReceive, .deferTaskrun, .incrementalBuffers]),
        Kernel(release: "5.19.0-50-generic", features: linux5_19, design: "legacy",
               leftOut: [.multishotReceive, .deferTaskrun, .incrementalBuffers]),
        Kernel(release: "6.0.19", features: linux6_0, design: "multishot, coop-taskrun, whole buffers",
               leftOut: [.deferTaskrun, .incrementalBuffers]),
        Kernel(release: "6.1.0-28-amd64", features: linux6_1, design: "multishot, defer-taskrun, whole buffers",
               leftOut: [.incrementalBuffers]),
        Kernel(release: "6.8.0-49-generic", features: linux6_1, design: "multishot, defer-taskrun, whole buffers",
               leftOut: [.incrementalBuffers]),
        Kernel(release: "6.12.9-amd64", features: linux6_12, design: "multishot, defer-taskrun, incremental buffers",
               leftOut: []),
        Kernel(release: "6.13.2", features: linux6_13, design: "multishot, defer-taskrun, incremental buffers",
               leftOut: []),
    ]
}
