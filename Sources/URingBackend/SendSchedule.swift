import Backend

/// The connections with bytes to send this turn, in the order their bytes came: their sends are
/// submitted at the end of the turn, so every slice received in the turn goes in one gathered send.
///
/// A connection is scheduled when its send state turns from idle to sending, so it is never in the
/// list twice. The list grows (doubling) to the most connections that ever sent in one turn.
struct SendSchedule: ~Copyable {
    private var descriptors: DoublingStorage<Int32>
    private(set) var count = 0

    init(capacity: Int = 1024) {
        descriptors = DoublingStorage(capacity: max(capacity, 16)) { _ in -1 }
    }

    @inline(__always)
    mutating func append(_ fd: Int32) {
        if count == descriptors.capacity { descriptors.reserve(count + 1) { _ in -1 } }
        descriptors[count].pointee = fd
        count &+= 1
    }

    @inline(__always)
    subscript(index: Int) -> Int32 { descriptors[index].pointee }

    /// Empties the list (its members have been handled).
    @inline(__always)
    mutating func removeAll() { count = 0 }
}
