import URingBackend

extension URingBackend.Options {
    /// The `echo` flags that give these options back.
    ///
    /// Sizes are given where they differ from the mode's defaults. The design (the mode and each
    /// feature the negotiation may leave out) is stated flag by flag, so each is a requirement:
    /// `echo` serves exactly these options on a kernel that has them and refuses on one that does
    /// not. With `negotiating`, only what differs from the best design is given, so on an older
    /// kernel `echo` negotiates the rest, as a user's bare `echo --backend uring` does. On a
    /// kernel with every feature both give the same options. `submitAll` has no flag: the
    /// negotiation sets it from the kernel.
    public func arguments(negotiating: Bool = false) -> [String] {
        if let splice { return spliceArguments(splice) }
        let best = URingBackend.Options(mode: mode, sqpoll: sqpoll)
        let pinned = !negotiating
        var flags = FlagWriter(backend: URingBackend.name)
        flags.value("uring-mode", mode.rawValue, default: URingBackend.Options().mode.rawValue, stated: pinned)
        flags.flag("sqpoll", sqpoll)
        flags.toggle("defer-taskrun", deferTaskrun, default: best.deferTaskrun, stated: pinned && best.deferTaskrun)
        // The negotiation turns COOP_TASKRUN on where it turns DEFER_TASKRUN off.
        flags.toggle("coop-taskrun", coopTaskrun, default: best.coopTaskrun,
                     stated: pinned && best.deferTaskrun && !deferTaskrun)
        flags.toggle("incremental-buffers", incrementalBuffers, default: best.incrementalBuffers,
                     stated: pinned && best.incrementalBuffers)
        flags.flag("fixed-files", fixedFiles)
        flags.value("zerocopy-send", zeroCopyThreshold, default: best.zeroCopyThreshold)
        flags.value("buffer-size", bufferSize, default: best.bufferSize)
        flags.value("buffer-count", bufferCount, default: best.bufferCount)
        flags.value("ring-entries", ringEntries, default: best.ringEntries)
        flags.value("cq-entries", completionQueueEntries, default: best.completionQueueEntries)
        return flags.arguments
    }

    /// `--splice` runs a loop of its own that takes no mode, buffer or feature flag (the command
    /// refuses them): only the splice strategy, the pipe size and the ring's sizes apply.
    private func spliceArguments(_ splice: URingBackend.SpliceStrategy) -> [String] {
        let standard = URingBackend.Options()
        var flags = FlagWriter(backend: URingBackend.name)
        flags.flag("splice", true)
        flags.value("splice-mode", splice.rawValue, default: splice.rawValue, stated: true)
        flags.value("pipe-size", pipeSize, default: standard.pipeSize)
        flags.value("ring-entries", ringEntries, default: standard.ringEntries)
        flags.value("cq-entries", completionQueueEntries, default: standard.completionQueueEntries)
        return flags.arguments
    }
}
