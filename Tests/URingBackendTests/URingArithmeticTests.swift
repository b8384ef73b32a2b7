#if canImport(Glibc)
import Glibc
#endif
import Testing
import CLibUring
@testable import URingBackend
@testable import EchoTestSupport

extension EchoSuite {
    /// The io_uring backend's bit and index arithmetic: `user_data` packing, buffer-ring positions,
    /// kernel versions.
    @Suite("io_uring arithmetic")
    struct URingArithmetic {
        // MARK: UserData

        @Test("UserData packs operation, buffer and descriptor and unpacks them unchanged")
        func userDataRoundTrip() {
            for operation in UserData.Operation.allCases {
                for fd in [Int32(0), 1, 65535, Int32.max, -1] {
                    for buffer in [UInt16(0), 1, 0x8000, .max] {
                        let data = UserData(rawValue: UserData(operation, fd: fd, buffer: buffer).rawValue)
                        #expect(data.operation == operation && data.fd == fd && data.buffer == buffer,
                                "\(operation) fd \(fd) buffer \(buffer) → \(String(data.rawValue, radix: 16))")
                    }
                }
            }
        }

        @Test("UserData: operation in bits 56–63, buffer in 32–47, descriptor in 0–31")
        func userDataLayout() {
            let data = UserData(.send, fd: 7, buffer: 3)
            #expect(data.rawValue == UInt64(UserData.Operation.send.rawValue) << 56 | 3 << 32 | 7)
            #expect(UserData(.recv, fd: -1).rawValue == UInt64(UserData.Operation.recv.rawValue) << 56 | 0xFFFF_FFFF,
                    "a negative descriptor stays in the low 32 bits")
        }

        @Test("UserData: a value this loop never submitted has no operation")
        func userDataUnknown() {
            #expect(UserData(rawValue: 0).operation == nil)
            #expect(UserData(rawValue: UInt64(0xEE) << 56).operation == nil)
        }

        // MARK: Buffer rings

        @Test("ConnectionBufferRing: positions map to slots modulo the ring size, across the 16-bit wrap")
        func connectionRingSlots() {
            let count = ConnectionBufferRing.count
            #expect(ConnectionBufferRing.slot(of: 0) == 0)
            #expect(ConnectionBufferRing.slot(of: count - 1) == count - 1)
            #expect(ConnectionBufferRing.slot(of: count) == 0)
            #expect(ConnectionBufferRing.slot(of: UInt16.max) == count - 1)
            #expect(ConnectionBufferRing.slot(of: UInt16.max &+ 1) == 0)
        }

        @Test("ConnectionBufferRing: buffer i starts in slot i, whole, page-aligned; a recycled buffer goes to the tail")
        func connectionRingLayout() {
            let buffers = ConnectionBufferRing(bufferSize: 512)
            let count = ConnectionBufferRing.count
            let ring = buffers.ring
            #expect(ring.tail == count, "every buffer published")
            for id in 0..<count {
                let entry = ring.entry(at: id)
                let address = UInt64(UInt(bitPattern: buffers.buffer(id)))
                #expect(entry.bid == id && entry.len == 512 && entry.addr == address, "slot \(id)")
            }
            let first = buffers.buffer(0)
            let second = buffers.buffer(1)
            #expect(Int(bitPattern: first) % 4096 == 0, "buffers start on a page, after the header")
            #expect(first.distance(to: second) == 512)
            buffers.recycle(3)
            #expect(ring.tail == count + 1)
            #expect(ring.entry(at: ConnectionBufferRing.slot(of: count)).bid == 3)
        }

        @Test("ConnectionBufferRing: a gathered send covers the queued buffers in ring order, the first from its offset")
        func connectionRingGather() {
            let buffers = ConnectionBufferRing(bufferSize: 256)
            let start: UInt16 = 6  // positions 6, 7, 8 → slots 6, 7, 0
            for (index, length) in [Int32(200), 256, 10].enumerated() {
                buffers.setFilled(length, at: start &+ UInt16(index))
            }
            var sqe = io_uring_sqe()
            buffers.prepareSend(&sqe, fd: 9, from: start, count: 3, offset: 50)
            let expected = [(buffers.buffer(6) + 50, 150), (buffers.buffer(7), 256), (buffers.buffer(0), 10)]
            #expect(UInt32(sqe.opcode) == UInt32(IORING_OP_SENDMSG.rawValue))
            #expect(sqe.fd == 9)
            let message = UnsafePointer<msghdr>(bitPattern: UInt(sqe.addr))
            #expect(message?.pointee.msg_iovlen == 3)
            guard let vectors = message?.pointee.msg_iov else { return }
            for (index, (base, length)) in expected.enumerated() {
                #expect(vectors[index].iov_base == base && vectors[index].iov_len == length, "vector \(index)")
            }
        }

        @Test("ProvidedBufferRing: buffers reach the kernel only when published, at positions that wrap at the ring size")
        func providedRingPublishes() throws {
            let uring = try Ring(entries: 8, parameters: URingBackend.Options().setupParameters)
            var buffers = try ProvidedBufferRing(registeringOn: uring, entries: 4, group: 7)
            let ring = buffers.ring
            let memory = UnsafeMutableRawPointer.allocate(byteCount: 64 * 16, alignment: 64)
            defer { memory.deallocate() }
            for id in UInt16(0)..<3 { buffers.add(id, address: memory + Int(id) * 64, length: 64) }
            #expect(ring.tail == 0, "nothing is visible before publish()")
            buffers.publish()
            #expect(ring.tail == 3)
            #expect(ring.entry(at: 2).bid == 2)
            buffers.add(10, address: memory + 10 * 64, length: 64)
            buffers.add(11, address: memory + 11 * 64, length: 64)
            buffers.publish()
            #expect(ring.tail == 5)
            #expect(ring.entry(at: 3).bid == 10)
            #expect(ring.entry(at: 0).bid == 11, "position 4 wraps to slot 0 of a 4-entry ring")
        }

        // MARK: Kernel versions

        // MARK: SendSlices and GatherScratch

        @Test("SendSlices: taken slices keep their values, given ones are reused, and growing keeps every slice")
        func sendSlicesFreeListAndGrowth() {
            var slices = SendSlices(capacity: 4)
            var taken: [Int32] = []
            for index in 0..<10 {  // past the capacity twice: grows to 16
                taken.append(slices.take(buffer: UInt16(index), offset: Int32(index * 100), length: Int32(index + 1)))
            }
            #expect(Set(taken).count == 10, "every slice taken is distinct")
            #expect(slices.capacity == 16)
            for (index, slice) in taken.enumerated() {
                let value = slices[slice]
                #expect(value.buffer == UInt16(index) && value.offset == Int32(index * 100)
                        && value.length == Int32(index + 1) && value.next == -1)
            }
            slices.give(taken[3])
            slices.give(taken[7])
            // The free list is last in, first out: the most recently given slice comes back first.
            #expect(slices.take(buffer: 1, offset: 0, length: 1) == taken[7])
            #expect(slices.take(buffer: 1, offset: 0, length: 1) == taken[3])
            #expect(slices.capacity == 16)
        }

        @Test("GatherScratch: a turn's records are distinct, run out at the limit, and come back once taken")
        func gatherScratchTurns() {
            var scratch = GatherScratch()
            var vectors: Set<UnsafeMutablePointer<iovec>> = []
            for _ in 0..<GatherScratch.sendsPerTurn {
                guard let header = scratch.take() else {
                    Issue.record("a record is missing before the limit")
                    return
                }
                #expect(header.pointee.msg_iovlen == 0)
                vectors.insert(header.pointee.msg_iov)
            }
            #expect(vectors.count == GatherScratch.sendsPerTurn, "each send has its own iovecs")
            #expect(scratch.take() == nil, "past the limit a send carries one slice")
            scratch.markQueued(through: 300)
            scratch.reclaim(takenThrough: 299)
            #expect(scratch.take() == nil, "an entry before the mark is still queued: no record is free")
            scratch.reclaim(takenThrough: 300)
            #expect(scratch.take() != nil, "the kernel took every entry up to the mark")
        }

        @Test("GatherScratch: the mark compares across the queue position's wrap")
        func gatherScratchWrap() {
            var scratch = GatherScratch()
            _ = scratch.take()
            scratch.markQueued(through: 3)  // the tail wrapped past UInt32.max
            scratch.reclaim(takenThrough: UInt32.max - 2)
            for _ in 1..<GatherScratch.sendsPerTurn { _ = scratch.take() }
            #expect(scratch.take() == nil, "the head before the wrap has not reached the mark")
            scratch.reclaim(takenThrough: 5)
            #expect(scratch.take() != nil)
        }

        @Test("KernelVersion: the first two numbers of a release string, nil without two")
        func kernelVersionParsing() {
            #expect(KernelVersion(release: "6.18.44-fc-v857") == KernelVersion(major: 6, minor: 18))
            #expect(KernelVersion(release: "5.15.0-1051-azure") == KernelVersion(major: 5, minor: 15))
            #expect(KernelVersion(release: "6.10rc1") == KernelVersion(major: 6, minor: 10))
            #expect(KernelVersion(release: "6") == nil)
            #expect(KernelVersion(release: "") == nil)
        }

        @Test("KernelVersion: ordered by major, then minor as a number (6.10 after 6.9)")
        func kernelVersionOrder() {
            #expect(KernelVersion(major: 6, minor: 9) < KernelVersion(major: 6, minor: 10))
            #expect(KernelVersion(major: 5, minor: 19) < KernelVersion(major: 6, minor: 0))
            #expect(!(KernelVersion(major: 6, minor: 0) < KernelVersion(major: 6, minor: 0)))
            #expect(KernelVersion.running >= KernelVersion(major: 5, minor: 1), "this machine runs io_uring")
        }
    }
}
