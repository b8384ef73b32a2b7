import Backend

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

    private var storage: DoublingStorage<Slice>
    private var free: Int32

    /// Every slice free, linked in order.
    init(capacity: Int) {
        storage = DoublingStorage(capacity: max(capacity, 1), initial: Self.free)
        storage[storage.capacity - 1].pointee.next = -1
        free = 0
    }

    /// Slice `index` of a run of free ones, linked to the next.
    private static func free(_ index: Int) -> Slice {
        Slice(offset: 0, length: 0, next: Int32(index + 1), buffer: 0)
    }

    var capacity: Int { storage.capacity }

    /// A slice for `length` bytes at `offset` in `buffer`, not linked to any queue.
    @inline(__always)
    mutating func take(buffer: UInt16, offset: Int32, length: Int32) -> Int32 {
        if free < 0 { grow() }
        let index = free
        free = storage[Int(index)].pointee.next
        storage[Int(index)].pointee = Slice(offset: offset, length: length, next: -1, buffer: buffer)
        return index
    }

    /// Returns slice `index` to the free list.
    @inline(__always)
    mutating func give(_ index: Int32) {
        storage[Int(index)].pointee.next = free
        free = index
    }

    @inline(__always)
    subscript(index: Int32) -> Slice {
        get { storage[Int(index)].pointee }
        nonmutating _modify { yield &storage[Int(index)].pointee }
    }

    /// Every slice is in use: doubles the store, the new slices making the free list.
    private mutating func grow() {
        let old = storage.reserve(storage.capacity * 2, initial: Self.free)
        storage[storage.capacity - 1].pointee.next = -1
        free = Int32(old)
    }
}
