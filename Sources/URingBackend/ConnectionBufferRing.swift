#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// One connection's own provided-buffer ring and buffers, for receive bundles (`--uring-mode bundle`).
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
/// One page-aligned allocation holds, in order: the ring's entries, the `msghdr` and `iovec`s of
/// the connection's gathered send (one send in flight per connection), the bytes each buffer
/// holds; then, from the next page, the buffers. Noncopyable: the value owns the allocation and
/// frees it when it goes (the loop unregisters the ring first, once nothing uses its buffers). If
/// unregistering fails, the kernel may still write into the memory: ``leak()`` gives it up unfreed.
struct ConnectionBufferRing: ~Copyable {
    /// Buffers per connection: what an idle connection costs in bundle mode (times the buffer size).
    static let count: UInt16 = 8

    private let base: UnsafeMutableRawPointer
    /// The first buffer: a page boundary after the header, so it depends on the page size, which
    /// is known only at run time; kept rather than computed on the per-request path.
    private let buffers: UnsafeMutableRawPointer
    /// Bytes in each buffer.
    let bufferSize: Int

    /// Allocates the ring and buffers and fills the ring with every buffer (not yet registered).
    init(bufferSize: Int) {
        self.bufferSize = bufferSize
        base = .allocate(byteCount: Self.allocatedBytes(bufferSize: bufferSize), alignment: MemoryPage.size)
        buffers = base + Layout.buffers
        io_uring_buf_ring_init(ring)
        for id in 0..<Self.count {
            io_uring_buf_ring_add(ring, buffer(id), UInt32(bufferSize), id, Self.mask, Int32(id))
        }
        io_uring_buf_ring_advance(ring, Int32(Self.count))
    }

    deinit { base.deallocate() }

    /// Gives the memory up without freeing it, for when the kernel may still hold the ring (its
    /// unregistration failed); returns the bytes given up.
    consuming func leak() -> Int {
        let bytes = Self.allocatedBytes(bufferSize: bufferSize)
        discard self
        return bytes
    }

    /// The size of one connection's allocation.
    static func allocatedBytes(bufferSize: Int) -> Int {
        Layout.buffers + Int(count) * bufferSize
    }

    /// The entry (and buffer id) that ring `position` maps to: positions count up through 16 bits
    /// and wrap like the kernel's head; entries repeat every ``count`` positions.
    @inline(__always)
    static func slot(of position: UInt16) -> UInt16 {
        position & (count &- 1)
    }

    /// The mask liburing's ring calls take.
    static var mask: Int32 {
        @inline(__always) get { Int32(count) - 1 }
    }

    var ring: UnsafeMutablePointer<io_uring_buf_ring> {
        @inline(__always) get { base.assumingMemoryBound(to: io_uring_buf_ring.self) }
    }

    private var message: UnsafeMutablePointer<msghdr> {
        @inline(__always) get { (base + Layout.message).assumingMemoryBound(to: msghdr.self) }
    }

    private var vectors: UnsafeMutablePointer<iovec> {
        @inline(__always) get { (base + Layout.vectors).assumingMemoryBound(to: iovec.self) }
    }

    /// Bytes received into each buffer, by buffer id.
    private var filledLengths: UnsafeMutablePointer<Int32> {
        @inline(__always) get { (base + Layout.filled).assumingMemoryBound(to: Int32.self) }
    }

    /// The first byte of buffer `id`.
    @inline(__always)
    func buffer(_ id: UInt16) -> UnsafeMutableRawPointer {
        buffers + Int(id) * bufferSize
    }

    /// The length the kernel left in the entry at ring `position`.
    @inline(__always)
    func entryLength(at position: UInt16) -> Int32 {
        Int32(truncatingIfNeeded: ring.entry(at: Self.slot(of: position)).len)
    }

    /// The bytes received into the buffer at ring `position`.
    @inline(__always)
    func filled(at position: UInt16) -> Int32 {
        filledLengths[Int(Self.slot(of: position))]
    }

    /// Records that the buffer at ring `position` holds `length` bytes.
    @inline(__always)
    func setFilled(_ length: Int32, at position: UInt16) {
        filledLengths[Int(Self.slot(of: position))] = length
    }

    /// Puts buffer `id` back at the ring's tail, whole, and publishes it.
    @inline(__always)
    func recycle(_ id: UInt16) {
        io_uring_buf_ring_add(ring, buffer(id), UInt32(bufferSize), id, Self.mask, 0)
        io_uring_buf_ring_advance(ring, 1)
    }

    /// Prepares `sqe` to send the `count` buffers from ring `position` on, the first from byte
    /// `offset`: one buffer with `send`, several gathered into one `sendmsg`.
    @inline(__always)
    func prepareSend(_ sqe: UnsafeMutablePointer<io_uring_sqe>, fd: Int32, from position: UInt16, count: Int, offset: Int32) {
        if count == 1 {
            let id = Self.slot(of: position)
            io_uring_prep_send(sqe, fd, buffer(id) + Int(offset), Int(filledLengths[Int(id)] &- offset), Int32(MSG_NOSIGNAL))
            return
        }
        var position = position
        var offset = offset
        for index in 0..<count {
            let id = Self.slot(of: position)
            vectors[index] = iovec(iov_base: buffer(id) + Int(offset), iov_len: Int(filledLengths[Int(id)] &- offset))
            offset = 0
            position &+= 1
        }
        message.pointee = msghdr()
        message.pointee.msg_iov = vectors
        message.pointee.msg_iovlen = count
        io_uring_prep_sendmsg(sqe, fd, message, UInt32(MSG_NOSIGNAL))
    }

    /// Registers the ring with `uring` as buffer group `group`; returns 0 or a negative error number.
    func register(on uring: borrowing Ring, group: UInt16) -> Int32 {
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: base))
        registration.ring_entries = UInt32(Self.count)
        registration.bgid = group
        return io_uring_register_buf_ring(uring.raw, &registration, 0)
    }

    /// Byte offsets of the parts of the allocation, each aligned for what it holds.
    private enum Layout {
        /// The kernel maps the ring by pages, so it starts on one, and the buffers start on the next.
        static var pageSize: Int { MemoryPage.size }
        /// The ring's entries come first (the ring's tail overlays the first entry).
        static var message: Int {
            aligned(Int(ConnectionBufferRing.count) * MemoryLayout<io_uring_buf>.stride, for: msghdr.self)
        }
        static var vectors: Int {
            aligned(message + MemoryLayout<msghdr>.stride, for: iovec.self)
        }
        static var filled: Int {
            aligned(vectors + Int(ConnectionBufferRing.count) * MemoryLayout<iovec>.stride, for: Int32.self)
        }
        /// The first buffer: the first page boundary after the header.
        static var buffers: Int {
            let headerEnd = filled + Int(ConnectionBufferRing.count) * MemoryLayout<Int32>.stride
            return (headerEnd + pageSize - 1) / pageSize * pageSize
        }

        @inline(__always)
        private static func aligned<T>(_ offset: Int, for _: T.Type) -> Int {
            let alignment = MemoryLayout<T>.alignment
            return (offset + alignment - 1) & ~(alignment - 1)
        }
    }
}
