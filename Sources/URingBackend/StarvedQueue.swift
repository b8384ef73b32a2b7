/// A connection record that can wait in a ``StarvedQueue``.
protocol StarvedQueueMember: ConnectionRecord {
    /// The next descriptor in the queue, or -1.
    var nextStarved: Int32 { get set }
}

/// Connections whose receive failed for lack of buffers, oldest first, linked through their
/// records in the ``ConnectionTable`` (no allocation).
///
/// The loop wakes all of them at once at the end of a turn in which buffers came back: the kernel
/// selects a buffer before it looks for data, so `ENOBUFS` also comes back to connections with
/// nothing to read. Those park in the kernel's poll without holding a buffer; the ones with data
/// race for the buffers, and the losers come back here. Waking at the end of the turn sees every
/// buffer returned in the turn, whatever order the completions came in.
struct StarvedQueue {
    private var head: Int32 = -1
    private var tail: Int32 = -1

    var isEmpty: Bool {
        @inline(__always) get { head < 0 }
    }

    /// Appends `fd`, which must not be queued already.
    mutating func append<Record: StarvedQueueMember>(_ fd: Int32, in connections: borrowing ConnectionTable<Record>) {
        connections[fd].pointee.nextStarved = -1
        if tail >= 0 {
            connections[tail].pointee.nextStarved = fd
        } else {
            head = fd
        }
        tail = fd
    }

    /// Empties the queue and returns its members, to walk with ``Members/next(in:)``.
    mutating func removeAll() -> Members {
        defer { head = -1; tail = -1 }
        return Members(upcoming: head)
    }

    /// The connections taken out of the queue by ``removeAll()``, oldest first.
    struct Members {
        fileprivate var upcoming: Int32

        /// The next member, unlinked from the rest, or nil after the last.
        mutating func next<Record: StarvedQueueMember>(in connections: borrowing ConnectionTable<Record>) -> Int32? {
            guard upcoming >= 0 else { return nil }
            let fd = upcoming
            upcoming = connections[fd].pointee.nextStarved
            connections[fd].pointee.nextStarved = -1
            return fd
        }
    }
}
