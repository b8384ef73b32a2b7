#if canImport(Glibc)
import Glibc
#endif

/// One page-aligned allocation cut into equal buffers that the kernel selects from.
///
/// Connections do not own buffers: a buffer is lent to a connection between the `recv` that
/// fills it and the `send` that drains it, so idle connections hold no memory here.
struct BufferPool: ~Copyable {
    let base: UnsafeMutableRawPointer
    let bufferSize: Int
    let count: Int

    init(bufferSize: Int, count: Int) {
        self.bufferSize = bufferSize
        self.count = count
        base = .allocate(byteCount: bufferSize * count, alignment: MemoryPage.size)
        memset(base, 0, bufferSize * count)
    }

    deinit { base.deallocate() }

    /// The first byte of buffer `id`.
    @inline(__always)
    func address(of id: UInt16) -> UnsafeMutableRawPointer {
        base + Int(id) * bufferSize
    }
}
