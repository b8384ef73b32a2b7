import EpollBackend

extension EpollBackend.Options {
    /// The `echo` flags that give these options back: each option that differs from its default.
    public var arguments: [String] {
        let standard = EpollBackend.Options()
        var flags = FlagWriter(backend: EpollBackend.name)
        flags.value("epoll-mode", trigger.rawValue, default: standard.trigger.rawValue)
        flags.value("buffer-size", bufferSize, default: standard.bufferSize)
        flags.value("max-events", maxEvents, default: standard.maxEvents)
        flags.flag("splice", splice)
        flags.value("pipe-size", pipeSize, default: standard.pipeSize)
        return flags.arguments
    }
}
