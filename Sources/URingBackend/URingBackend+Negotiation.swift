extension URingBackend {
    /// The options chosen for a kernel, and what the best design has that they go without.
    public struct Negotiation: Sendable, Equatable {
        /// A feature of the best design this kernel cannot give, and why, in words.
        public struct LeftOut: Sendable, Equatable {
            public let feature: URingFeature
            public let reason: String
        }

        public var options: Options
        public var leftOut: [LeftOut]

        /// The start line's account of the negotiation: "io_uring on Linux 6.1.0-28-amd64:
        /// multishot, defer-taskrun, whole buffers; left out: incremental buffer consumption
        /// (needs Linux 6.12, this kernel is 6.1)".
        public func line(on kernel: URingFeatures) -> String {
            "io_uring on Linux \(kernel.release): \(options.design); \(leftOutText)"
        }

        /// "nothing left out", or each feature left out with its reason.
        public var leftOutText: String {
            if leftOut.isEmpty { return "nothing left out" }
            return "left out: " + leftOut.map { "\($0.feature.title) (\($0.reason))" }.joined(separator: ", ")
        }
    }
}

extension URingBackend.Options {
    /// The best options of `mode` that `kernel` can serve (with `mode` nil, the best mode too),
    /// and what they leave out of the design a kernel with every feature would get.
    ///
    /// The chain, best first: multishot with `DEFER_TASKRUN` and incremental 64 KiB buffers
    /// (Linux 6.12); multishot with `DEFER_TASKRUN` and whole buffers (6.1); multishot with
    /// `COOP_TASKRUN` (6.0); legacy (5.7). Only what the caller leaves open is negotiated: a mode it names stays,
    /// and a kernel without it is refused by ``URingBackend/validate()``.
    public static func negotiated(mode: URingBackend.Mode? = nil, sqpoll: Bool = false,
                                  on kernel: URingFeatures) -> URingBackend.Negotiation {
        let best = URingBackend.Options(mode: mode ?? .multishot, sqpoll: sqpoll)
        var leftOut: [URingBackend.Negotiation.LeftOut] = []
        func leaveOut(_ feature: URingFeature) {
            leftOut.append(.init(feature: feature, reason: kernel.reasonMissing(feature)))
        }
        var options = best
        if mode == nil, let missing = URingBackend.Mode.multishot.features.sorted().last(where: { !kernel.has($0) }) {
            options = URingBackend.Options(mode: .legacy, sqpoll: sqpoll)
            leaveOut(missing)
        }
        if best.deferTaskrun && !kernel.has(.deferTaskrun) {
            options.deferTaskrun = false
            // Multishot without DEFER_TASKRUN costs 0.73–0.80× per message with COOP_TASKRUN
            // up to 16 KiB messages, and the same beyond (benchmarks/RESULTS.md, 2026-12-07).
            options.coopTaskrun = options.mode == .multishot && kernel.has(.coopTaskrun)
            leaveOut(.deferTaskrun)
        }
        if best.incrementalBuffers && !kernel.has(.incrementalBuffers) {
            // The same pool of 64 KiB buffers, each receive taking a whole one: as cheap as 16 KiB
            // buffers up to 64 KiB messages, 0.74× their CPU per message at 1 MiB × 300, and
            // cheaper than 4 KiB ones throughout (benchmarks/RESULTS.md, 2026-12-07).
            options.incrementalBuffers = false
            leaveOut(.incrementalBuffers)
        }
        options.submitAll = kernel.has(.submitAll)
        return URingBackend.Negotiation(options: options, leftOut: leftOut)
    }

    /// The design in a few words, as the start line and `echo --features` name it:
    /// "multishot, defer-taskrun, incremental buffers".
    public var design: String {
        var parts = [splice.map { "splice (\($0.rawValue))" } ?? mode.rawValue]
        if deferTaskrun { parts.append("defer-taskrun") }
        if coopTaskrun { parts.append("coop-taskrun") }
        if sqpoll { parts.append("sqpoll") }
        if mode == .multishot && splice == nil { parts.append(incrementalBuffers ? "incremental buffers" : "whole buffers") }
        return parts.joined(separator: ", ")
    }

    /// Every kernel feature these options use: what ``URingBackend/validate()`` requires.
    public var featuresUsed: Set<URingFeature> {
        // The splice loop uses no buffers: a multishot accept, polls and splices (Linux 5.13 and
        // 5.7, older than any feature listed).
        var used: Set<URingFeature> = splice == nil ? mode.features : [.multishotAccept]
        if submitAll { used.insert(.submitAll) }
        if deferTaskrun { used.formUnion([.singleIssuer, .deferTaskrun]) }
        if coopTaskrun { used.insert(.coopTaskrun) }
        if sqpoll { used.insert(.sqpoll) }
        guard splice == nil else { return used }
        if incrementalBuffers { used.insert(.incrementalBuffers) }
        if fixedFiles { used.formUnion([.directDescriptors, .directDescriptorRelease]) }
        if zeroCopyThreshold > 0 { used.insert(.zeroCopySend) }
        return used
    }
}

extension URingBackend.Mode {
    /// The kernel features the mode stands on.
    public var features: Set<URingFeature> {
        switch self {
        case .legacy: [.fastPoll, .provideBuffers]
        case .multishot: [.fastPoll, .bufferRing, .multishotAccept, .multishotReceive]
        case .bundle: [.fastPoll, .bufferRing, .multishotAccept, .multishotReceive, .receiveBundles]
        }
    }
}
