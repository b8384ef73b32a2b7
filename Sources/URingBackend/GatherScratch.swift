#if canImport(Glibc)
import Glibc
#endif

/// Message headers and iovec arrays for the gathered sends of one turn: a connection with several
/// queued slices sends them with one `sendmsg`, so a message cut across buffers leaves as one
/// write (one large packet on loopback) instead of one send per slice.
///
/// The kernel copies a `sendmsg`'s header and iovecs when it takes the submission
/// (`IORING_FEAT_SUBMIT_STABLE`, Linux 5.5), so the records are reused every turn: the loop calls
/// ``reset()`` after the turn's submissions are queued, before the driver submits them and the
/// next turn fills the records again. Not with `SQPOLL`, whose kernel thread takes submissions
/// whenever it runs. A fixed number per turn, no allocation: past it, a send
/// carries only its first slice.
struct GatherScratch: ~Copyable {
    /// Slices one send gathers at most.
    static let slicesPerSend = 16
    /// Gathered sends per turn at most.
    static let sendsPerTurn = 256

    private let headers: UnsafeMutablePointer<msghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private var used = 0

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

    /// Every record is free again: the turn's submissions are about to be handed to the kernel.
    @inline(__always)
    mutating func reset() {
        used = 0
    }
}
