import BlockingBackend

extension BlockingBackend.Options {
    /// The `echo` flags that give these options back. The mode is always given: it is the choice
    /// between two servers (one client at a time or a thread each), not a tuning.
    public var arguments: [String] {
        let standard = BlockingBackend.Options()
        var flags = FlagWriter(backend: BlockingBackend.name)
        flags.value("blocking-mode", mode.rawValue, default: standard.mode.rawValue, stated: true)
        flags.value("buffer-size", bufferSize, default: standard.bufferSize)
        return flags.arguments
    }
}
