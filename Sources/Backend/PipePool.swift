import CLinux
import EchoSupport

#if canImport(Glibc)
import Glibc
#endif

/// The pipes a splicing loop moves bytes through: socket → pipe → socket, with no copy into user
/// space.
///
/// A connection holds a pipe only while bytes are in it: it takes one when it becomes readable
/// and gives it back, empty, once the pipe has drained into the socket, so idle connections hold
/// none and the pipes in use follow the connections busy right now. Returned pipes stay open for
/// the next connection until ``closeIdle(syscalls:)``. Each pipe costs two descriptors, so the pool
/// is bounded; when it is empty, ``take(syscalls:)`` returns nil and the connection is served by
/// the copy path instead. So it does when `pipe2` fails (say with `EMFILE`): the pool then opens
/// no pipe until ``descriptorsFreed()`` says a descriptor was closed, rather than paying a failing
/// call per read. A pipe given back with bytes still in it (its connection closed) is closed
/// rather than reused.
public struct PipePool: ~Copyable {
    /// The pipe capacity both backends ask for by default: 128 KiB, the cheapest measured for
    /// streams (benchmarks/RESULTS.md, "pipe size"); also the most a connection holds while its
    /// peer does not read.
    public static let defaultPipeSize = 128 * 1024
    /// The pipe capacities accepted: a page up to the kernel's default `pipe-max-size`.
    public static let pipeSizeRange = 4096...(1 << 20)
    /// The most pipes a loop opens by default: 1024, and at most an eighth of the descriptor limit
    /// (each pipe takes two).
    public static var defaultLimit: Int { min(1024, max(1, FileDescriptorLimit.current / 8)) }

    /// Checks a backend's pipe options: `size` within ``pipeSizeRange``, `limit` at least 1.
    public static func validate(size: Int, limit: Int) throws(EchoError) {
        guard pipeSizeRange.contains(size) else {
            throw .invalidConfiguration("invalid pipe size \(size): must be "
                + "\(pipeSizeRange.lowerBound)...\(pipeSizeRange.upperBound) bytes")
        }
        guard limit >= 1 else {
            throw .invalidConfiguration("invalid pipe limit \(limit): must be at least 1")
        }
    }

    /// The most pipes open at once.
    public let capacity: Int32
    /// The capacity asked of each pipe (`F_SETPIPE_SZ`), which is also the most one splice moves.
    public let pipeSize: Int
    /// Per slot: the read and write ends, or -1 while the slot has no pipe.
    @usableFromInline let readEnds: UnsafeMutablePointer<Int32>
    @usableFromInline let writeEnds: UnsafeMutablePointer<Int32>
    /// Slots whose pipe is open and empty, most recently returned last.
    @usableFromInline let free: UnsafeMutablePointer<Int32>
    @usableFromInline var freeCount: Int32 = 0
    /// Slots never used, or whose pipe was closed.
    @usableFromInline let vacant: UnsafeMutablePointer<Int32>
    @usableFromInline var vacantCount: Int32

    /// Whether `pipe2` failed and no descriptor has been closed since: opening would fail again.
    @usableFromInline var openRefused = false
    /// The fewest pipes the free list held since ``closeUnused(syscalls:)`` last ran: that many
    /// sat unused the whole time.
    @usableFromInline var lowWater: Int32 = 0

    /// Pipes opened and closed so far.
    public private(set) var opened: UInt64 = 0
    public private(set) var closed: UInt64 = 0

    /// A pool of at most `capacity` pipes (0: none; every ``take(syscalls:)`` returns nil).
    public init(capacity: Int, pipeSize: Int) {
        precondition(capacity >= 0 && pipeSize > 0)
        self.capacity = Int32(capacity)
        self.pipeSize = pipeSize
        readEnds = .allocate(capacity: max(capacity, 1))
        readEnds.initialize(repeating: -1, count: max(capacity, 1))
        writeEnds = .allocate(capacity: max(capacity, 1))
        writeEnds.initialize(repeating: -1, count: max(capacity, 1))
        free = .allocate(capacity: max(capacity, 1))
        vacant = .allocate(capacity: max(capacity, 1))
        for slot in 0..<capacity { vacant[slot] = Int32(capacity - 1 - slot) }
        vacantCount = Int32(capacity)
    }

    deinit {
        for slot in 0..<Int(capacity) where readEnds[slot] >= 0 {
            _ = Glibc.close(readEnds[slot])
            _ = Glibc.close(writeEnds[slot])
        }
        readEnds.deallocate()
        writeEnds.deallocate()
        free.deallocate()
        vacant.deallocate()
    }

    /// Pipes open now.
    public var openCount: UInt64 { opened &- closed }

    /// Pipes open and held by no connection.
    @inlinable
    public var idleCount: Int32 { freeCount }

    /// The read end of the pipe in `slot`.
    @inlinable @inline(__always)
    public func readEnd(_ slot: Int32) -> Int32 { readEnds[Int(slot)] }

    /// The write end of the pipe in `slot`.
    @inlinable @inline(__always)
    public func writeEnd(_ slot: Int32) -> Int32 { writeEnds[Int(slot)] }

    /// An empty pipe's slot: a returned one if any, else a new pipe; nil when the pool is at its
    /// capacity or a new pipe cannot be made. `syscalls` counts the `pipe2` and `fcntl` calls.
    @inlinable @inline(__always)
    public mutating func take(syscalls: inout UInt64) -> Int32? {
        if freeCount > 0 {
            freeCount &-= 1
            if freeCount < lowWater { lowWater = freeCount }
            return free[Int(freeCount)]
        }
        return open(syscalls: &syscalls)
    }

    @usableFromInline @inline(never)
    mutating func open(syscalls: inout UInt64) -> Int32? {
        guard vacantCount > 0 && !openRefused else { return nil }
        var ends: (Int32, Int32) = (-1, -1)
        let status = withUnsafeMutableBytes(of: &ends) { clinux_pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        syscalls &+= 1
        guard status == 0 else {
            // Out of descriptors or pipe memory, whichever: the copy path serves meanwhile.
            openRefused = true
            return nil
        }
        // The kernel keeps its default (16 pages) where the size is refused (over pipe-max-size).
        _ = clinux_set_pipe_size(ends.1, Int32(clamping: pipeSize))
        syscalls &+= 1
        vacantCount &-= 1
        let slot = vacant[Int(vacantCount)]
        readEnds[Int(slot)] = ends.0
        writeEnds[Int(slot)] = ends.1
        opened &+= 1
        return slot
    }

    /// Gives back the pipe in `slot`: kept for reuse when `empty`, closed otherwise (bytes left
    /// behind by a connection that closed must never reach another). `syscalls` counts the `close` calls.
    @inlinable @inline(__always)
    public mutating func give(_ slot: Int32, empty: Bool, syscalls: inout UInt64) {
        if _fastPath(empty) {
            free[Int(freeCount)] = slot
            freeCount &+= 1
        } else {
            discard(slot, syscalls: &syscalls)
        }
    }

    @usableFromInline @inline(never)
    mutating func discard(_ slot: Int32, syscalls: inout UInt64) {
        _ = Glibc.close(readEnds[Int(slot)])
        _ = Glibc.close(writeEnds[Int(slot)])
        syscalls &+= 2
        readEnds[Int(slot)] = -1
        writeEnds[Int(slot)] = -1
        vacant[Int(vacantCount)] = slot
        vacantCount &+= 1
        closed &+= 1
        openRefused = false
    }

    /// Closes every pipe no connection holds and returns how many there were. `syscalls` counts
    /// the `close` calls.
    public mutating func closeIdle(syscalls: inout UInt64) -> Int32 {
        let count = freeCount
        while freeCount > 0 {
            freeCount &-= 1
            discard(free[Int(freeCount)], syscalls: &syscalls)
        }
        return count
    }

    /// Closes the pipes that sat unused since the last call (the free list's low-water mark) and
    /// returns how many: the pool shrinks to what the busiest moment of that interval needed.
    /// `syscalls` counts the `close` calls.
    public mutating func closeUnused(syscalls: inout UInt64) -> Int32 {
        var count = min(lowWater, freeCount)
        let closed = count
        while count > 0 {
            freeCount &-= 1
            count &-= 1
            discard(free[Int(freeCount)], syscalls: &syscalls)
        }
        lowWater = freeCount
        return closed
    }

    /// A descriptor was closed: a pipe may be opened again.
    @inlinable @inline(__always)
    public mutating func descriptorsFreed() {
        openRefused = false
    }
}
