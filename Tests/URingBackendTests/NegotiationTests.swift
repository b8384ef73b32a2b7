import Testing
import Backend
@testable import URingBackend
import EchoSupport
@testable import EchoTestSupport

extension EchoSuite {
    /// The negotiated default for kernels this machine cannot boot: each kernel's io_uring
    /// features, written out here from the kernel's history and liburing's man pages (not derived
    /// from ``URingFeature/since``), and the design, start line and errors that must follow.
    @Suite("io_uring negotiation per kernel")
    struct Negotiation {
        typealias Kernel = KernelHistory.Kernel
        static let kernels = KernelHistory.kernels

        @Test("the default: the best design the kernel offers, and what it leaves out", arguments: kernels)
        func negotiatedDefault(_ kernel: Kernel) throws {
            let negotiation = URingBackend.Options.negotiated(on: kernel.probed)
            #expect(negotiation.options.design == kernel.design)
            #expect(negotiation.leftOut.map(\.feature) == kernel.leftOut)
            #expect(negotiation.options.submitAll == kernel.features.contains(.submitAll))
            #expect(negotiation.options.featuresUsed.isSubset(of: kernel.features),
                    "uses \(negotiation.options.featuresUsed.subtracting(kernel.features)), which the kernel lacks")
            // The negotiated options pass the kernel check they will meet there.
            try URingBackend(options: negotiation.options).validateOptions()
            try KernelSupport.requireFeatures(negotiation.options, on: kernel.probed)
        }

        @Test("the start line names the design and each feature left out with the release it needs")
        func startLine() {
            let onDebian12 = URingFeatures(release: "6.1.0-28-amd64", available: KernelHistory.linux6_1)
            #expect(URingBackend.Options.negotiated(on: onDebian12).line(on: onDebian12)
                == "io_uring on Linux 6.1.0-28-amd64: multishot, defer-taskrun, whole buffers; "
                + "left out: incremental buffer consumption (needs Linux 6.12, this kernel is 6.1)")
            let onUbuntu22 = URingFeatures(release: "5.15.0-126-generic", available: KernelHistory.linux5_15)
            #expect(URingBackend.Options.negotiated(on: onUbuntu22).line(on: onUbuntu22)
                == "io_uring on Linux 5.15.0-126-generic: legacy; left out: "
                + "multishot receive (needs Linux 6.0, this kernel is 5.15), "
                + "deferred task running (needs Linux 6.1, this kernel is 5.15), "
                + "incremental buffer consumption (needs Linux 6.12, this kernel is 5.15)")
            let onDebian13 = URingFeatures(release: "6.12.9-amd64", available: KernelHistory.linux6_12)
            #expect(URingBackend.Options.negotiated(on: onDebian13).line(on: onDebian13)
                == "io_uring on Linux 6.12.9-amd64: multishot, defer-taskrun, incremental buffers; nothing left out")
        }

        @Test("whole buffers where incremental consumption is missing: the same pool of 64 KiB buffers")
        func wholeBufferPool() {
            let options = URingBackend.Options.negotiated(on: URingFeatures(release: "6.1.0", available: KernelHistory.linux6_1)).options
            #expect(!options.incrementalBuffers)
            let full = URingBackend.Options()
            #expect(options.bufferSize == full.bufferSize && options.bufferCount == full.bufferCount)
        }

        @Test("a mode the user names stays, with that mode's features negotiated")
        func namedMode() throws {
            let debian12 = URingFeatures(release: "6.1.0", available: KernelHistory.linux6_1)
            let legacy = URingBackend.Options.negotiated(mode: .legacy, on: debian12)
            #expect(legacy.options.mode == .legacy && legacy.leftOut.isEmpty)
            let multishot = URingBackend.Options.negotiated(mode: .multishot, on: debian12)
            #expect(multishot.options.design == "multishot, defer-taskrun, whole buffers")
            // A named mode the kernel lacks is kept, and refused by the kernel check.
            let bundle = URingBackend.Options.negotiated(mode: .bundle, on: debian12)
            #expect(bundle.options.mode == .bundle)
            #expect(throws: EchoError.missingKernelFeature("receive bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)")) {
                try KernelSupport.requireFeatures(bundle.options, on: debian12)
            }
            let ubuntu22 = URingFeatures(release: "5.15.0", available: KernelHistory.linux5_15)
            #expect(throws: EchoError.missingKernelFeature(
                "provided-buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19); --uring-mode legacy runs without it")) {
                try KernelSupport.requireFeatures(URingBackend.Options.negotiated(mode: .multishot, on: ubuntu22).options,
                                                  on: ubuntu22)
            }
        }

        @Test("a feature the user asks for is a requirement: the kernel check names it and its release")
        func requestedFeatures() {
            let debian12 = URingFeatures(release: "6.1.0", available: KernelHistory.linux6_1)
            var options = URingBackend.Options.negotiated(on: debian12).options
            options.incrementalBuffers = true
            #expect(throws: EchoError.missingKernelFeature(
                "incremental buffer consumption (IOU_PBUF_RING_INC, Linux 6.12); --no-incremental-buffers runs without it")) {
                try KernelSupport.requireFeatures(options, on: debian12)
            }
            let linux6_0 = URingFeatures(release: "6.0.19", available: KernelHistory.linux6_0)
            options = URingBackend.Options.negotiated(on: linux6_0).options
            options.deferTaskrun = true
            #expect(throws: EchoError.missingKernelFeature(
                "deferred task running (IORING_SETUP_DEFER_TASKRUN, Linux 6.1); --no-defer-taskrun runs without it")) {
                try KernelSupport.requireFeatures(options, on: linux6_0)
            }
        }

        @Test("--fixed-files needs closed direct descriptors let go of at once (6.13), not only sparse tables (5.19)")
        func fixedFiles() throws {
            for features in [KernelHistory.linux6_1, KernelHistory.linux6_12] {
                let kernel = URingFeatures(release: "6.1.0", available: features)
                var options = URingBackend.Options.negotiated(on: kernel).options
                options.fixedFiles = true
                #expect(throws: EchoError.missingKernelFeature(
                    "release of closed direct descriptors at once (per-file io_rsrc_node, Linux 6.13); "
                    + "without --fixed-files, connections use ordinary descriptors")) {
                    try KernelSupport.requireFeatures(options, on: kernel)
                }
            }
            let linux6_13 = URingFeatures(release: "6.13.2", available: KernelHistory.linux6_13)
            var options = URingBackend.Options.negotiated(on: linux6_13).options
            options.fixedFiles = true
            try KernelSupport.requireFeatures(options, on: linux6_13)
        }

        @Test("COOP_TASKRUN is a switch for loops without DEFER_TASKRUN: refused beside it, a feature used with it")
        func coopTaskrun() throws {
            var options = URingBackend.Options()
            options.coopTaskrun = true
            #expect(throws: EchoError.self) { try URingBackend(options: options).validateOptions() }
            options.deferTaskrun = false
            try URingBackend(options: options).validateOptions()
            #expect(options.featuresUsed.contains(.coopTaskrun) && !options.featuresUsed.contains(.deferTaskrun))
            #expect(options.design == "multishot, coop-taskrun, incremental buffers")
        }

        @Test("io_uring blocked (seccomp, kernel.io_uring_disabled): every mode is refused with the reason")
        func blocked() {
            let reason = EchoError.uringUnavailable(reason: "kernel.io_uring_disabled is 2")
            let rhel9 = URingFeatures(release: "5.14.0-427.el9.x86_64", available: [], unavailable: reason)
            for mode in URingBackend.Mode.allCases {
                #expect(throws: reason) {
                    try KernelSupport.requireFeatures(URingBackend.Options.negotiated(mode: mode, on: rhel9).options, on: rhel9)
                }
            }
        }

        @Test("the table's releases: a feature's kernel is the one the negotiation names")
        func reasons() {
            let linux5_15 = URingFeatures(release: "5.15.0", available: KernelHistory.linux5_15)
            #expect(linux5_15.reasonMissing(.multishotReceive) == "needs Linux 6.0, this kernel is 5.15")
            let backported = URingFeatures(release: "5.14.0-503.el9", available: KernelHistory.linux6_1)
            #expect(backported.reasonMissing(.incrementalBuffers) == "needs Linux 6.12, this kernel is 5.14")
            #expect(URingFeatures(release: "6.18.0", available: []).reasonMissing(.deferTaskrun)
                == "this kernel (6.18) does not offer it, though Linux 6.1 brought it")
        }

        @Test("the probe of this machine's kernel agrees with the negotiation it feeds")
        func probeHere() throws {
            let here = URingFeatures.running
            try #require(here.unavailable == nil, "this machine runs io_uring: \(String(describing: here.unavailable))")
            for feature in URingFeature.allCases where here.version >= feature.since && feature != .sqpoll {
                #expect(here.has(feature), "Linux \(here.version) should offer \(feature.name)")
            }
            let negotiated = URingBackend.Options.negotiated(on: here)
            if URingBackend.Options().featuresUsed.isSubset(of: here.available) {
                #expect(negotiated.options == URingBackend.Options() && negotiated.leftOut.isEmpty,
                        "on a kernel with every feature the negotiated default is the best design")
            } else {
                #expect(!negotiated.leftOut.isEmpty && negotiated.leftOut.allSatisfy { !here.has($0.feature) },
                        "what the default leaves out is what this kernel lacks: \(negotiated.leftOutText)")
            }
        }
    }
}
