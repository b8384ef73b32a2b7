#if canImport(Glibc)
import Glibc
#endif
import Backend
import CLibUring

/// A provided-buffer ring (Linux 5.19): shared memory where the loop publishes free buffers and
/// the kernel takes one per receive, with no submission per returned buffer.
///
/// liburing 2.3 has no `io_uring_setup_buf_ring`, so the ring is mapped and registered by hand.
/// Returning a buffer is two stores into the ring and, once per loop turn, one tail update.
struct ProvidedBufferRing: ~Copyable {
    /// The shared memory (read by tests through `BufferRingEntries.swift`).
    let ring: UnsafeMutablePointer<io_uring_buf_ring>
    private let mappedBytes: Int
    private let mask: Int32
    /// The buffer group receives select from.
    let group: UInt16
    /// Buffers added since the tail was last published.
    private var unpublished: Int32 = 0

    /// Maps a ring with room for `entries` buffers (a power of two) and registers it as `group`;
    /// `incremental` registers it with `IOU_PBUF_RING_INC` (Linux 6.12), so each receive takes only
    /// the bytes it needs from the head buffer.
    init(registeringOn uring: borrowing Ring, entries: Int, group: UInt16, incremental: Bool = false) throws(EchoError) {
        precondition(entries > 0 && entries & (entries - 1) == 0, "buffer ring entries must be a power of two")
        let bytes = entries * MemoryLayout<io_uring_buf>.stride
        ring = try Self.mapAndRegister(on: uring, bytes: bytes, entries: entries, group: group, incremental: incremental)
        mappedBytes = bytes
        mask = Int32(entries - 1)
        self.group = group
    }

    private static func mapAndRegister(on uring: borrowing Ring, bytes: Int, entries: Int, group: UInt16,
                                       incremental: Bool) throws(EchoError) -> UnsafeMutablePointer<io_uring_buf_ring> {
        guard let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0),
              memory != MAP_FAILED else {
            throw SystemCall.lastFailure("mmap(buffer ring)")
        }
        let ring = memory.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        io_uring_buf_ring_init(ring)
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: memory))
        registration.ring_entries = UInt32(entries)
        registration.bgid = group
        if incremental { registration.pad = KernelConstant.bufferRingIncremental }
        let status = io_uring_register_buf_ring(uring.raw, &registration, 0)
        guard status == 0 else {
            munmap(memory, bytes)
            if status == -EINVAL && incremental {
                throw .missingKernelFeature("incremental buffer consumption (IOU_PBUF_RING_INC, Linux 6.12; "
                                            + "--no-incremental-buffers runs without it)")
            }
            if status == -EINVAL {
                throw .missingKernelFeature("provided-buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19)")
            }
            throw SystemCall.failure("io_uring_register_buf_ring", result: status)
        }
        return ring
    }

    deinit {
        // The ring's registration ends with the io_uring instance; the memory is ours.
        munmap(UnsafeMutableRawPointer(ring), mappedBytes)
    }

    /// Queues buffer `id` at `address` for the kernel; visible once ``publish()`` runs.
    @inline(__always)
    mutating func add(_ id: UInt16, address: UnsafeMutableRawPointer, length: Int) {
        io_uring_buf_ring_add(ring, address, UInt32(length), id, mask, unpublished)
        unpublished &+= 1
    }

    /// Makes every buffer added since the last call visible to the kernel (one release store).
    @inline(__always)
    mutating func publish() {
        guard unpublished > 0 else { return }
        io_uring_buf_ring_advance(ring, unpublished)
        unpublished = 0
    }
}
