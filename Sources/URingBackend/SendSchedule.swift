/// The connections with bytes to send this turn, in the order their bytes came: their sends are
/// submitted at the end of the turn, so every slice received in the turn goes in one gathered send.
///
/// A connection is scheduled when its send state turns from idle to sending, so it is never in the
/// list twice. The list grows (doubling) to the most connections that ever sent in one turn.
struct SendSchedule: ~Copyable {
    private var descriptors: UnsafeMutablePointer<Int32>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 1024) {
        self.capacity = max(capacity, 16)
        descriptors = .allocate(capacity: self.capacity)
    }

    deinit { descriptors.deallocate() }

    @inline(__always)
    mutating func append(_ fd: Int32) {
        if count == capacity { grow() }
        descriptors[count] = fd
        count &+= 1
    }

    @inline(__always)
    subscript(index: Int) -> Int32 { descriptors[index] }

    /// Empties the list (its members have been handled).
    @inline(__always)
    mutating func removeAll() { count = 0 }

    private mutating func grow() {
        let larger = UnsafeMutablePointer<Int32>.allocate(capacity: capacity * 2)
        larger.moveInitialize(from: descriptors, count: count)
        descriptors.deallocate()
        descriptors = larger
        capacity *= 2
    }
}
