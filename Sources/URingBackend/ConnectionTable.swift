/// The state of one connection in the io_uring loop: which buffer it is sending and how far.
///
/// At most one request is in flight per connection (a `recv` or a `send`), so a connection
/// is closed only when none is, and its descriptor can be reused safely.
struct URingConnection {
    /// The descriptor is a connection this loop owns.
    var isOpen = false
    /// Waiting in the starved queue for a buffer to come back to the pool.
    var isStarved = false
    /// The pool buffer being sent.
    var sendBuffer: UInt16 = 0
    /// Bytes of `sendBuffer` already sent.
    var sendOffset: Int32 = 0
    /// Bytes of `sendBuffer` to send in all.
    var sendLength: Int32 = 0
    /// The next descriptor in the starved queue, or -1.
    var nextStarved: Int32 = -1
}

/// A per-connection record a loop keeps in a ``ConnectionTable``.
protocol ConnectionRecord {
    /// The state of a slot no connection uses.
    init()
}

extension URingConnection: ConnectionRecord {}

/// Connection state indexed by file descriptor (or direct-descriptor index), in one contiguous
/// allocation that doubles when a larger descriptor arrives. Descriptors are small dense integers,
/// so this is both the fastest lookup and bounded by the process's descriptor limit, not by a constant.
struct ConnectionTable<Record: ConnectionRecord>: ~Copyable {
    private(set) var storage: UnsafeMutablePointer<Record>
    private(set) var capacity: Int

    init(initialCapacity: Int = 1024) {
        capacity = max(initialCapacity, 16)
        storage = .allocate(capacity: capacity)
        storage.initialize(repeating: Record(), count: capacity)
    }

    deinit {
        storage.deinitialize(count: capacity)
        storage.deallocate()
    }

    /// The slot for `fd`, which must be below ``capacity``.
    @inline(__always)
    subscript(fd: Int32) -> UnsafeMutablePointer<Record> {
        storage + Int(fd)
    }

    /// Makes room for `fd` (on accept only, never on the per-request path).
    mutating func reserve(_ fd: Int32) {
        let needed = Int(fd) + 1
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<Record>.allocate(capacity: newCapacity)
        grown.moveInitialize(from: storage, count: capacity)
        (grown + capacity).initialize(repeating: Record(), count: newCapacity - capacity)
        storage.deallocate()
        storage = grown
        capacity = newCapacity
    }
}
