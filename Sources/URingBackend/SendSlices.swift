/// The received bytes waiting to be echoed, as slices of pool buffers linked into per-connection
/// queues, with a free list: no allocation per request.
///
/// A slice is a run of bytes in one buffer. With whole buffers (the classic ring) each receive
/// fills one buffer and makes one slice. With incremental consumption (`IOU_PBUF_RING_INC`)
/// several receives, of one connection or of many, share a buffer, each taking the bytes after
/// the last; a connection's receive that continues its own previous slice extends it, so a stream
/// is sent in runs as long as the buffer allows.
///
/// The store grows (doubling) only when every slice is in use, which the whole-buffer ring never
/// reaches: it starts with a slice per buffer.
struct SendSlices: ~Copyable {
    struct Slice {
        /// Where the bytes start in the buffer, and how many there are.
        var offset: Int32
        var length: Int32
        /// The next slice in the queue (or in the free list), or -1.
        var next: Int32
        var buffer: UInt16
    }

    private(set) var storage: UnsafeMutablePointer<Slice>
    private(set) var capacity: Int
    private var free: Int32

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        storage = .allocate(capacity: self.capacity)
        free = -1
        Self.link(storage, from: 0, to: self.capacity, before: &free)
    }

    deinit { storage.deallocate() }

    /// Puts slices `start..<end` at the front of the free list, in order.
    private static func link(_ storage: UnsafeMutablePointer<Slice>, from start: Int, to end: Int,
                             before free: inout Int32) {
        var index = end - 1
        while index >= start {
            storage[index] = Slice(offset: 0, length: 0, next: free, buffer: 0)
            free = Int32(index)
            index -= 1
        }
    }

    /// A slice for `length` bytes at `offset` in `buffer`, not linked to any queue.
    @inline(__always)
    mutating func take(buffer: UInt16, offset: Int32, length: Int32) -> Int32 {
        if free < 0 { grow() }
        let index = free
        free = storage[Int(index)].next
        storage[Int(index)] = Slice(offset: offset, length: length, next: -1, buffer: buffer)
        return index
    }

    /// Returns slice `index` to the free list.
    @inline(__always)
    mutating func give(_ index: Int32) {
        storage[Int(index)].next = free
        free = index
    }

    @inline(__always)
    subscript(index: Int32) -> Slice {
        get { storage[Int(index)] }
        nonmutating _modify { yield &storage[Int(index)] }
    }

    private mutating func grow() {
        let larger = UnsafeMutablePointer<Slice>.allocate(capacity: capacity * 2)
        larger.moveInitialize(from: storage, count: capacity)
        storage.deallocate()
        Self.link(larger, from: capacity, to: capacity * 2, before: &free)
        storage = larger
        capacity *= 2
    }
}
