#if canImport(Glibc)
import Glibc
#endif

/// Message headers and iovec arrays for the gathered sends of one turn: a connection with several
/// queued slices sends them with one `sendmsg`, so a message cut across buffers leaves as one
/// write (one large packet on loopback) instead of one send per slice.
///
/// The kernel copies a `sendmsg`'s header and iovecs when it takes the submission
/// (`IORING_FEAT_SUBMIT_STABLE`, Linux 5.5), so a record is free again once the kernel has taken
/// the entry that uses it. Usually that is at the next submit; but without `SUBMIT_ALL` (before
/// Linux 5.18) a submission that fails stops the kernel there, and so can `-EBUSY`/`-EAGAIN`, so
/// entries may stay queued across a turn. The loop therefore marks where its entries end
/// (``markQueued(through:)``) and frees the records only once the kernel's head has passed that
/// mark (``reclaim(takenThrough:)``). Not with `SQPOLL`, whose kernel thread takes submissions
/// whenever it runs. A fixed number of records, no allocation: while they are all taken, a send
/// carries only its first slice.
struct GatherScratch: ~Copyable {
    /// Slices one send gathers at most.
    static let slicesPerSend = 16
    /// Gathered sends per turn at most.
    static let sendsPerTurn = 256

    private let headers: UnsafeMutablePointer<msghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private var used = 0
    /// The submission-queue position after the last entry that uses a record.
    private var lastUse: UInt32 = 0

    init() {
        headers = .allocate(capacity: Self.sendsPerTurn)
        headers.initialize(repeating: msghdr(), count: Self.sendsPerTurn)
        vectors = .allocate(capacity: Self.sendsPerTurn * Self.slicesPerSend)
        vectors.initialize(repeating: iovec(), count: Self.sendsPerTurn * Self.slicesPerSend)
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
    }

    /// A header with room for ``slicesPerSend`` iovecs (`msg_iov` set, `msg_iovlen` 0), or nil
    /// when this turn's records are all taken.
    @inline(__always)
    mutating func take() -> UnsafeMutablePointer<msghdr>? {
        guard used < Self.sendsPerTurn else { return nil }
        let header = headers + used
        header.pointee = msghdr()
        header.pointee.msg_iov = vectors + used * Self.slicesPerSend
        used &+= 1
        return header
    }

    /// The turn's submissions are queued, the last of them before position `tail` of the
    /// submission queue: every record taken so far is in use until the kernel has taken them.
    @inline(__always)
    mutating func markQueued(through tail: UInt32) {
        if used > 0 { lastUse = tail }
    }

    /// Frees every record when the kernel's head (`head`, the position after the last entry it
    /// took) has reached the mark; otherwise they stay taken, and new sends take the ones after.
    @inline(__always)
    mutating func reclaim(takenThrough head: UInt32) {
        if Int32(bitPattern: head &- lastUse) >= 0 { used = 0 }
    }
}
