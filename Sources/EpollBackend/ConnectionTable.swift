import Backend

/// Every connection's state, in one contiguous allocation indexed by descriptor.
///
/// Descriptors are small, dense integers, so a flat array indexed by them needs no hashing and
/// no per-connection allocation. The table starts with room for a few thousand descriptors and
/// doubles (``DoublingStorage``) whenever an accepted descriptor does not fit, so it holds as many connections as the
/// process may open. Growing happens only when a connection is opened.
///
/// Slots are handed out as `UnsafeMutablePointer<Connection>`: such a pointer stays valid until the
/// next ``open(_:)``, which may move the storage. The loop never holds one across an accept.
struct ConnectionTable: ~Copyable {
    private var slots: DoublingStorage<Connection>
    /// Slots allocated: every descriptor below it has one.
    var capacity: Int { slots.capacity }
    /// Connections open now.
    private(set) var openCount = 0
    /// The highest descriptor ever opened, which bounds a sweep over open connections.
    private(set) var highestDescriptor: Int32 = -1
    private var lastGeneration: UInt32 = 0

    /// A table with room for descriptors below `capacity` before it first grows.
    init(capacity: Int) {
        slots = DoublingStorage(capacity: max(capacity, 64)) { _ in .free }
    }

    /// Claims the slot for the newly accepted `descriptor`, growing the table if needed, and
    /// returns the token to register it with.
    mutating func open(_ descriptor: Int32) -> EventToken {
        precondition(descriptor >= 0, "negative descriptor \(descriptor)")
        let index = Int(descriptor)
        if index >= capacity { slots.reserve(index + 1) { _ in .free } }
        lastGeneration &+= 1
        if lastGeneration == 0 { lastGeneration = 1 }  // 0 marks the listener and the stop signal
        assert(slots[index].pointee.state == .closed, "descriptor \(descriptor) opened twice")
        slots[index].pointee = .opened(generation: lastGeneration)
        openCount += 1
        if descriptor > highestDescriptor { highestDescriptor = descriptor }
        return EventToken(descriptor: descriptor, generation: lastGeneration)
    }

    /// The open connection that `token` names, or `nil` when the event is stale (the connection
    /// closed, or its descriptor now belongs to a later one).
    @inline(__always)
    func connection(for token: EventToken) -> UnsafeMutablePointer<Connection>? {
        let index = Int(token.descriptor)
        guard index >= 0, index < capacity else { return nil }
        let slot = slots[index]
        guard slot.pointee.generation == token.generation, slot.pointee.state != .closed else { return nil }
        return slot
    }

    /// The connection open on `descriptor`, if any.
    func openConnection(on descriptor: Int32) -> UnsafeMutablePointer<Connection>? {
        let index = Int(descriptor)
        guard index >= 0, index < capacity, slots[index].pointee.state != .closed else { return nil }
        return slots[index]
    }

    /// The token the connection on `descriptor` is registered with.
    @inline(__always)
    func token(for descriptor: Int32) -> EventToken {
        EventToken(descriptor: descriptor, generation: slots[Int(descriptor)].pointee.generation)
    }

    /// Frees the slot of `descriptor`. Its pending buffer, if any, must have been given back.
    @inline(__always)
    mutating func release(_ descriptor: Int32) {
        let slot = slots[Int(descriptor)]
        assert(slot.pointee.state != .closed, "descriptor \(descriptor) released twice")
        slot.pointee.state = .closed
        slot.pointee.pending = nil
        openCount -= 1
    }
}
