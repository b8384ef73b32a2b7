#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// One connection's own provided-buffer ring and buffers, for receive bundles (`--bundle`).
///
/// A bundle's completion names only its first buffer; the others are the ring entries after it.
/// With one ring shared by every connection that cannot be relied on: a bundle that received,
/// then waited for more data and appended, resumes wherever the shared ring's head has moved to
/// in the meantime. A ring of its own has one consumer, and the loop returns its buffers in the
/// order they were filled (the send queue is first in, first out), so buffer `i` always sits at
/// ring position `i` modulo ``count``: a bundle is the run of positions after the last one
/// received, and each entry's length says how much of it was filled (the kernel shortens an
/// entry when it takes only part of it).
///
/// Layout of the one page-aligned allocation: the ring's entries, the `msghdr` and `iovec`s of
/// the connection's gathered send (one send in flight per connection), the bytes each buffer
/// holds; then, from the next page, the buffers.
struct ConnectionBufferRing {
    /// Buffers per connection: what an idle connection costs in bundle mode (times the buffer size).
    static let count: UInt16 = 8
    static let mask: Int32 = Int32(count) - 1

    private static let headerBytes = 4096
    private static let messageOffset = Int(count) * MemoryLayout<io_uring_buf>.stride
    private static let vectorsOffset = messageOffset + 64
    private static let filledOffset = vectorsOffset + Int(count) * MemoryLayout<iovec>.stride

    let base: UnsafeMutableRawPointer
    let bufferSize: Int

    /// Allocates the ring and buffers and fills the ring with every buffer (not yet registered).
    init(bufferSize: Int) {
        precondition(Self.filledOffset + Int(Self.count) * 4 <= Self.headerBytes)
        self.bufferSize = bufferSize
        base = .allocate(byteCount: Self.headerBytes + Int(Self.count) * bufferSize, alignment: 4096)
        io_uring_buf_ring_init(ring)
        for id in 0..<Self.count {
            io_uring_buf_ring_add(ring, buffer(id), UInt32(bufferSize), id, Self.mask, Int32(id))
        }
        io_uring_buf_ring_advance(ring, Int32(Self.count))
    }

    /// Frees the memory; the ring must be unregistered and no request may still use its buffers.
    func deallocate() { base.deallocate() }

    var ring: UnsafeMutablePointer<io_uring_buf_ring> { base.assumingMemoryBound(to: io_uring_buf_ring.self) }
    var message: UnsafeMutablePointer<msghdr> { (base + Self.messageOffset).assumingMemoryBound(to: msghdr.self) }
    var vectors: UnsafeMutablePointer<iovec> { (base + Self.vectorsOffset).assumingMemoryBound(to: iovec.self) }
    /// Bytes received into each buffer.
    var filled: UnsafeMutablePointer<Int32> { (base + Self.filledOffset).assumingMemoryBound(to: Int32.self) }

    /// The first byte of buffer `id`.
    @inline(__always)
    func buffer(_ id: UInt16) -> UnsafeMutableRawPointer {
        base + Self.headerBytes + Int(id) * bufferSize
    }

    /// The length the kernel left in the entry at ring `position`.
    @inline(__always)
    func entryLength(at position: UInt16) -> Int32 {
        let entries = base.assumingMemoryBound(to: io_uring_buf.self)
        return Int32(truncatingIfNeeded: entries[Int(Int32(position) & Self.mask)].len)
    }

    /// Puts buffer `id` back at the ring's tail, whole, and publishes it.
    @inline(__always)
    func recycle(_ id: UInt16) {
        io_uring_buf_ring_add(ring, buffer(id), UInt32(bufferSize), id, Self.mask, 0)
        io_uring_buf_ring_advance(ring, 1)
    }

    /// Registers the ring with `uring` as buffer group `group`.
    func register(on uring: borrowing Ring, group: UInt16) -> Int32 {
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: base))
        registration.ring_entries = UInt32(Self.count)
        registration.bgid = group
        return io_uring_register_buf_ring(uring.raw, &registration, 0)
    }
}
