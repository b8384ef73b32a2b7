import Backend

/// A per-connection record a loop keeps in a ``ConnectionTable``.
protocol ConnectionRecord: ~Copyable {
    /// The state of a slot no connection uses.
    init()
}

/// A record whose connection goes through ``ConnectionLifecycle`` (multishot and bundle).
protocol LifecycleRecord: ConnectionRecord, ~Copyable {
    var lifecycle: ConnectionLifecycle { get }
}

extension ConnectionTable where Record: LifecycleRecord & ~Copyable {
    /// Whether a connection on `fd` is open or still echoing what its peer sent before closing:
    /// one an idle timeout may end.
    func isLive(_ fd: Int32) -> Bool {
        guard Int(fd) < capacity else { return false }
        let lifecycle = self[fd].pointee.lifecycle
        return lifecycle == .open || lifecycle == .peerClosed
    }
}

/// Connection state indexed by file descriptor (or direct-descriptor index), in one contiguous
/// allocation (``DoublingStorage``) that doubles when a larger descriptor arrives. Descriptors are small dense integers,
/// so this is both the fastest lookup and bounded by the process's descriptor limit, not by a constant.
///
/// Records may be noncopyable (a bundle connection owns its buffer ring): the storage initializes,
/// moves and destroys them one by one, so whatever a record still owns is released with the table.
struct ConnectionTable<Record: ConnectionRecord & ~Copyable>: ~Copyable {
    private var storage: DoublingStorage<Record>

    init(initialCapacity: Int = 1024) {
        storage = DoublingStorage(capacity: max(initialCapacity, 16)) { _ in Record() }
    }

    /// Slots allocated: every `fd` below it has one.
    var capacity: Int { storage.capacity }

    /// The slot for `fd`, which must be below ``capacity``.
    @inline(__always)
    subscript(fd: Int32) -> UnsafeMutablePointer<Record> {
        storage[Int(fd)]
    }

    /// Makes room for `fd` (on accept only, never on the per-request path).
    mutating func reserve(_ fd: Int32) {
        storage.reserve(Int(fd) + 1) { _ in Record() }
    }
}
