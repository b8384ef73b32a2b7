import CLibUring

/// Reading a provided-buffer ring's shared memory: its entries and the tail the loop publishes.
///
/// The ring is an array of `io_uring_buf` whose first entry's last field doubles as the tail
/// (liburing's union); liburing writes both but has no call to read them back.
extension UnsafeMutablePointer where Pointee == io_uring_buf_ring {
    /// The entry in slot `slot` (a ring position already masked to the ring's size).
    @inline(__always)
    func entry(at slot: UInt16) -> io_uring_buf {
        UnsafeMutableRawPointer(self).assumingMemoryBound(to: io_uring_buf.self)[Int(slot)]
    }

    /// The tail: positions published to the kernel so far, wrapping at 16 bits.
    var tail: UInt16 {
        entry(at: 0).resv
    }
}
