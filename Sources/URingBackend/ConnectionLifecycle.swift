/// Where a connection of the multishot or bundle loop is in its life.
///
/// Closing dominates: a connection that breaks after its peer closed is closing, and nothing moves
/// it back. The loop closes the descriptor only once nothing of the connection is in flight, so a
/// descriptor is never reused under a request of the connection it belonged to.
enum ConnectionLifecycle: UInt8 {
    /// The slot is free.
    case free
    /// Echoing.
    case open
    /// The peer closed its side: close once every byte it sent has been echoed.
    case peerClosed
    /// Broken, or the loop is stopping: close once nothing is in flight, dropping what is queued.
    case closing

    /// Enters ``closing``; false when the connection was already there (nothing more to do).
    @inline(__always)
    mutating func beginClosing() -> Bool {
        guard self != .closing else { return false }
        self = .closing
        return true
    }
}

/// Whether a connection has a send in flight (never more than one per socket: the kernel does not
/// order completions of two sends on one socket).
enum SendState: UInt8 {
    case idle
    case sending
}
