/// What the loop stores in `epoll_event.data.u64`: a descriptor and the generation of the
/// connection that held it when it was registered.
///
/// Descriptors are reused as soon as they are closed, so within one batch of events a connection
/// closed by an earlier event can reappear, accepted under the same number, before a later event of
/// the old one is handled. The generation tells the two apart: an event whose generation is not
/// the slot's current one is stale and dropped. Generation 0 marks descriptors the loop does not
/// own as connections (the listener and the stop signal).
struct EventToken: Equatable {
    /// The packed value: generation in the high 32 bits, descriptor in the low 32.
    let rawValue: UInt64

    @inline(__always)
    init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    @inline(__always)
    init(descriptor: Int32, generation: UInt32) {
        rawValue = UInt64(generation) << 32 | UInt64(UInt32(bitPattern: descriptor))
    }

    /// A token for a descriptor that is not a connection.
    static func fixed(_ descriptor: Int32) -> EventToken {
        EventToken(descriptor: descriptor, generation: 0)
    }

    /// The registered descriptor.
    @inline(__always)
    var descriptor: Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: rawValue)) }

    /// The connection's generation; 0 for the listener and the stop signal.
    @inline(__always)
    var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }

    /// Whether the token names a connection.
    @inline(__always)
    var isConnection: Bool { generation != 0 }
}
